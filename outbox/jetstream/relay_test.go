package jetstream_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/outbox/jetstream"
	"github.com/cortexerp/datalayer/uow"
)

func bindDB(d uow.DBTX) uow.DBTX { return d }

// publishAll commits one unit of work per key, each publishing n events of
// its key on order.placed, the writers running at once.
func publishAll(t *testing.T, pool *pgxpool.Pool, keys []string, n int) {
	t.Helper()
	u := uow.New(pool, bindDB)
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	for i, key := range keys {
		wg.Go(func() {
			for j := range n {
				errs[i] = errors.Join(errs[i], u.Do(t.Context(), func(ctx context.Context, _ uow.DBTX) error {
					return outbox.Publish(ctx, "order.placed", key, fmt.Appendf(nil, `{"key":%q,"n":%d}`, key, j))
				}))
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
}

// consumed reads the whole stream through a consumer, as a subscriber
// would, and returns the messages' Nats-Msg-Id values in stream order,
// grouped by Outbox-Key.
func (f natsFixture) consumed(t *testing.T) (ids []string, byKey map[string][]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	info, err := f.stream.Info(ctx)
	require.NoError(t, err)
	c, err := f.stream.OrderedConsumer(ctx, natsjs.OrderedConsumerConfig{})
	require.NoError(t, err)
	byKey = map[string][]int64{}
	for uint64(len(ids)) < info.State.Msgs {
		batch, err := c.Fetch(int(info.State.Msgs)-len(ids), natsjs.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		got := 0
		for m := range batch.Messages() {
			got++
			id := m.Headers().Get(natsjs.MsgIDHeader)
			ids = append(ids, id)
			n, err := strconv.ParseInt(id, 10, 64)
			require.NoError(t, err)
			key := m.Headers().Get(jetstream.HeaderKey)
			byKey[key] = append(byKey[key], n)
		}
		require.NoError(t, batch.Error())
		require.NotZero(t, got, "the consumer got no message within 5s")
	}
	return ids, byKey
}

// states counts outbox_events by state.
func states(t *testing.T, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rs, err := pool.Query(context.WithoutCancel(t.Context()), "SELECT state, count(*) FROM outbox_events GROUP BY state")
	require.NoError(t, err)
	out := map[string]int{}
	for rs.Next() {
		var s string
		var n int
		require.NoError(t, rs.Scan(&s, &n))
		out[s] = n
	}
	require.NoError(t, rs.Err())
	return out
}

// requireOnePerEvent asserts that the stream holds exactly one message per
// event of the database, each key's in id order.
func requireOnePerEvent(t *testing.T, pool *pgxpool.Pool, f natsFixture) {
	t.Helper()
	rs, err := pool.Query(t.Context(), "SELECT id::text FROM outbox_events ORDER BY id")
	require.NoError(t, err)
	want, err := pgx.CollectRows(rs, pgx.RowTo[string])
	require.NoError(t, err)
	ids, byKey := f.consumed(t)
	require.ElementsMatch(t, want, ids, "one message per event, none twice")
	for key, seq := range byKey {
		require.IsIncreasing(t, seq, "key %q is in commit order", key)
	}
}

// drainAll runs Drain until no event is pending, or fails the test when
// that takes longer than testTimeout.
func drainAll(t *testing.T, r *outbox.Relay, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for states(t, pool)["pending"] > 0 {
		require.True(t, time.Now().Before(deadline), "events still pending after %v: %v", testTimeout, states(t, pool))
		_, err := r.Drain(t.Context())
		require.NoError(t, err)
	}
}

func TestRelayDeliversEachCommittedEventToJetStreamOnce(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t, dbtest.WithMigrations(outbox.Migrations()))
	f := newNATS(t)
	keys := []string{"customer-1", "customer-2", "customer-3", "customer-4"}
	publishAll(t, pool, keys, 10)
	// A rolled-back unit of work leaves no event, so JetStream never sees it.
	errRollback := errors.New("roll back")
	err := uow.New(pool, bindDB).Do(t.Context(), func(ctx context.Context, _ uow.DBTX) error {
		require.NoError(t, outbox.Publish(ctx, "order.placed", "customer-1", []byte(`{"rolled":"back"}`)))
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)

	sink, err := jetstream.NewSink(f.js, jetstream.WithStream("ORDERS"))
	require.NoError(t, err)
	relay, err := outbox.NewRelay(pool, sink, outbox.WithWorkers(4))
	require.NoError(t, err)
	n, err := relay.Drain(t.Context())
	require.NoError(t, err)
	require.Equal(t, 40, n)

	require.Equal(t, map[string]int{"delivered": 40}, states(t, pool))
	requireOnePerEvent(t, pool, f)
	require.Equal(t, int64(40), sink.Published())
	require.Zero(t, sink.Duplicates())
}

// lostMark is a sink that delivers to JetStream and then fails the first
// attempt of every event, as a relay does whose mark never reaches the
// database (its connection cut after the acknowledgement).
type lostMark struct{ inner *jetstream.Sink }

func (s lostMark) Deliver(ctx context.Context, e outbox.Event) error {
	if err := s.inner.Deliver(ctx, e); err != nil {
		return err
	}
	if e.Attempt == 1 {
		return errors.New("the mark was lost after JetStream acknowledged")
	}
	return nil
}

func TestARedeliveryAfterTheAckIsDroppedByJetStream(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t, dbtest.WithMigrations(outbox.Migrations()))
	f := newNATS(t)
	publishAll(t, pool, []string{"a", "b", ""}, 5)
	sink, err := jetstream.NewSink(f.js)
	require.NoError(t, err)
	relay, err := outbox.NewRelay(pool, lostMark{sink}, outbox.WithBackoff(time.Millisecond, time.Millisecond))
	require.NoError(t, err)

	drainAll(t, relay, pool)

	require.Equal(t, map[string]int{"delivered": 15}, states(t, pool))
	var attempts []int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT array_agg(DISTINCT attempts) FROM outbox_events").Scan(&attempts))
	require.Equal(t, []int{2}, attempts, "a failed attempt each, then the delivered one")
	requireOnePerEvent(t, pool, f)
	require.Equal(t, int64(15), sink.Published())
	require.Equal(t, int64(15), sink.Duplicates(), "every redelivery was a duplicate")
}

// childEnv tells the test binary to run as the relay child of
// TestARelayKilledBetweenTheAckAndTheMarkRedelivers.
const childEnv = "JETSTREAM_TEST_RELAY_CHILD"

// relayChild is the child process of
// TestARelayKilledBetweenTheAckAndTheMarkRedelivers (TestMain runs it when
// childEnv is set): a relay that delivers to JetStream, prints "acked ID"
// after each acknowledgement, and after the third one hangs, holding its
// claim transaction open, until it is killed. It returns only on failure.
func relayChild() error {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("CHILD_DATABASE_URL"))
	if err != nil {
		return err
	}
	nc, err := nats.Connect(os.Getenv("CHILD_NATS_URL"))
	if err != nil {
		return err
	}
	js, err := natsjs.New(nc)
	if err != nil {
		return err
	}
	sink, err := jetstream.NewSink(js)
	if err != nil {
		return err
	}
	acked := 0
	hang := outbox.SinkFunc(func(ctx context.Context, e outbox.Event) error {
		if err := sink.Deliver(ctx, e); err != nil {
			return err
		}
		acked++
		fmt.Printf("acked %d\n", e.ID)
		if acked == 3 {
			select {} // killed here, between the acknowledgement and the mark
		}
		return nil
	})
	relay, err := outbox.NewRelay(pool, hang, outbox.WithWorkers(1), outbox.WithBatchSize(8), outbox.WithSinkTimeout(time.Hour))
	if err != nil {
		return err
	}
	_, err = relay.Drain(ctx)
	return fmt.Errorf("the relay finished instead of hanging: %w", err)
}

func TestARelayKilledBetweenTheAckAndTheMarkRedelivers(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t, dbtest.WithMigrations(outbox.Migrations()))
	pool, err := pgxpool.New(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	f := newNATS(t)
	// Without a key the six events are claimed in one transaction.
	publishAll(t, pool, []string{""}, 6)

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_DATABASE_URL="+dbURL, "CHILD_NATS_URL="+f.url)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var acked []string
	sc := bufio.NewScanner(out)
	for len(acked) < 3 && sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked = append(acked, id)
		}
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.Equal(t, []string{"1", "2", "3"}, acked, "the child acknowledged three events, then hung")

	// Its transaction died with it: nothing was marked, JetStream holds three.
	require.Equal(t, map[string]int{"pending": 6}, states(t, pool))
	info, err := f.stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.Msgs)

	sink, err := jetstream.NewSink(f.js)
	require.NoError(t, err)
	relay, err := outbox.NewRelay(pool, sink)
	require.NoError(t, err)
	drainAll(t, relay, pool)

	require.Equal(t, map[string]int{"delivered": 6}, states(t, pool))
	requireOnePerEvent(t, pool, f)
	require.Equal(t, int64(3), sink.Duplicates(), "the three the child had sent")
	require.Equal(t, int64(3), sink.Published())
}

func TestTwoRunningRelaysSendEachEventOnceInKeyOrder(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t, dbtest.WithMigrations(outbox.Migrations()), dbtest.WithMaxConns(16))
	f := newNATS(t)
	sink, err := jetstream.NewSink(f.js)
	require.NoError(t, err)
	const events = 48
	acked := make(chan struct{}, events)
	counting := outbox.SinkFunc(func(ctx context.Context, e outbox.Event) error {
		err := sink.Deliver(ctx, e)
		if err == nil {
			acked <- struct{}{}
		}
		return err
	})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 2 {
		r, err := outbox.NewRelay(pool, counting, outbox.WithWorkers(3), outbox.WithBatchSize(4))
		require.NoError(t, err)
		wg.Go(func() { require.NoError(t, r.Run(ctx)) })
	}
	// The relays deliver while the writers commit.
	publishAll(t, pool, []string{"a", "b", "c", "d", "e", "f"}, events/6)

	timeout := time.After(testTimeout)
	for range events {
		select {
		case <-acked:
		case <-timeout:
			t.Fatalf("fewer than %d acknowledgements after %v: %v", events, testTimeout, states(t, pool))
		}
	}
	// The last marks commit just after their acknowledgement.
	deadline := time.Now().Add(testTimeout)
	for states(t, pool)["delivered"] < events {
		require.True(t, time.Now().Before(deadline), "not all marked after %v: %v", testTimeout, states(t, pool))
	}
	cancel()
	wg.Wait()

	require.Equal(t, map[string]int{"delivered": events}, states(t, pool))
	requireOnePerEvent(t, pool, f)
	require.Zero(t, sink.Duplicates(), "no event was sent twice: the relays never held one at once")
	require.Equal(t, int64(events), sink.Published())
}
