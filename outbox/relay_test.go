package outbox_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

// exclusive is a sink that fails the test when one event, or two events of
// one key, are delivered at once, and records every delivery.
type exclusive struct {
	t        *testing.T
	pool     *pgxpool.Pool // a round trip per delivery, so deliveries overlap
	mu       sync.Mutex
	inFlight map[int64]bool
	keys     map[string]bool
	seen     []outbox.Event
	overlaps atomic.Int64
}

func (s *exclusive) Deliver(ctx context.Context, e outbox.Event) error {
	s.mu.Lock()
	if s.inFlight[e.ID] || (e.Key != "" && s.keys[e.Key]) {
		s.overlaps.Add(1)
	}
	s.inFlight[e.ID] = true
	if e.Key != "" {
		s.keys[e.Key] = true
	}
	s.mu.Unlock()
	_, err := s.pool.Exec(ctx, "SELECT 1")
	s.mu.Lock()
	delete(s.inFlight, e.ID)
	if e.Key != "" {
		delete(s.keys, e.Key)
	}
	s.seen = append(s.seen, e)
	s.mu.Unlock()
	return err
}

func (s *exclusive) got() []outbox.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]outbox.Event(nil), s.seen...)
}

func TestTwoRelaysNeverDeliverOneEventOrOneKeyAtOnce(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t, dbtest.WithMaxConns(16))
	sink := &exclusive{t: t, pool: pool, inFlight: map[int64]bool{}, keys: map[string]bool{}}
	const keys, perKey, unkeyed = 12, 8, 24
	publishAll := func() {
		for i := range perKey {
			require.NoError(t, u.Do(t.Context(), func(ctx context.Context, _ uow.DBTX) error {
				var msgs []outbox.Message
				for k := range keys {
					msgs = append(msgs, outbox.Message{Topic: "t", Key: fmt.Sprintf("k%d", k), Payload: []byte(fmt.Sprint(i))})
				}
				for range unkeyed / perKey {
					msgs = append(msgs, outbox.Message{Topic: "t", Payload: []byte("u")})
				}
				return outbox.PublishBatch(ctx, msgs...)
			}))
		}
	}
	publishAll() // a backlog before the relays start, and more while they run
	for i := range 2 {
		r, err := outbox.NewRelay(pool, sink, outbox.WithWorkers(3), outbox.WithBatchSize(4), outbox.WithName(fmt.Sprint("relay-", i)))
		require.NoError(t, err)
		runRelay(t, r)
	}
	publishAll()
	total := 2 * (keys*perKey + unkeyed)
	eventually(t, "every event delivered", func() bool { return count(t, pool, "state = 'delivered'") == total })

	require.Zero(t, sink.overlaps.Load(), "an event, or two of one key, were out at once")
	got := sink.got()
	require.Len(t, got, total, "each event delivered exactly once (nothing crashed)")
	last := map[string]int64{}
	for _, e := range got {
		if e.Key == "" {
			continue
		}
		require.Greater(t, e.ID, last[e.Key], "key %s out of order", e.Key)
		last[e.Key] = e.ID
	}
	require.Zero(t, count(t, pool, "state <> 'delivered' OR attempts <> 1"))
}

func TestPerKeyOrderHoldsWhenTransactionsCommitOutOfIdOrder(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t, dbtest.WithMaxConns(24))
	rec := &recorder{}
	r, err := outbox.NewRelay(pool, rec, outbox.WithWorkers(4), outbox.WithPollInterval(time.Hour)) // woken by NOTIFY only
	require.NoError(t, err)
	runRelay(t, r)
	eventually(t, "the relay listening", func() bool { h, _ := r.Health(t.Context()); return h.Listening })

	// Forced: A publishes to k and stays open; B publishes to k too and
	// waits for A; C publishes to j and commits, with an id above A's.
	ctx := t.Context()
	holdA, aPublished := make(chan struct{}), make(chan struct{})
	aDone, bDone := make(chan error, 1), make(chan error, 1)
	go func() {
		aDone <- u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
			if err := outbox.Publish(ctx, "t", "k", []byte("a")); err != nil {
				return err
			}
			close(aPublished)
			<-holdA
			return nil
		})
	}()
	<-aPublished
	go func() {
		bDone <- u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error { return outbox.Publish(ctx, "t", "k", []byte("b")) })
	}()
	eventually(t, "B waiting for A's key lock", func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n))
		return n == 1
	})
	publish(t, u, "t", "j", "c")
	eventually(t, "C delivered while A is open", func() bool { return rec.len() == 1 })
	close(holdA)
	require.NoError(t, <-aDone)
	require.NoError(t, <-bDone)
	eventually(t, "A and B delivered", func() bool { return rec.len() == 3 })
	got := rec.got()
	require.Equal(t, []string{"c", "a", "b"}, payloads(got))
	c, a, b := got[0], got[1], got[2]
	require.Less(t, a.ID, c.ID, "A's id is below C's although C committed first")
	require.Greater(t, b.ID, c.ID, "B's id was drawn after A committed, so after C's")

	// 16 writers, each a run of transactions over 4 shared keys, the
	// relay delivering meanwhile.
	const writers, txs = 16, 6
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for tx := range txs {
				err := u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
					// One batch per transaction: its key locks are taken in
					// key order, so writers sharing keys never deadlock.
					var msgs []outbox.Message
					for i := range 1 + rnd.IntN(3) {
						msgs = append(msgs, outbox.Message{Topic: "t", Key: fmt.Sprintf("key%d", rnd.IntN(4)),
							Payload: fmt.Appendf(nil, "w%d-t%d-%d", w, tx, i)})
					}
					return outbox.PublishBatch(ctx, msgs...)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := count(t, pool, "true")
	eventually(t, "every event delivered", func() bool { return count(t, pool, "state = 'delivered'") == total })
	require.Equal(t, total, rec.len())

	lastID := map[string]int64{}
	lastTx := map[string]map[int]string{} // key → writer → last "t<tx>-<i>" seen
	seen := map[int64]bool{}
	for _, e := range rec.got() {
		require.False(t, seen[e.ID], "event %d delivered twice", e.ID)
		seen[e.ID] = true
		require.Greater(t, e.ID, lastID[e.Key], "key %s out of id order", e.Key)
		lastID[e.Key] = e.ID
		if !strings.HasPrefix(string(e.Payload), "w") {
			continue
		}
		var w, tx, i int
		_, err := fmt.Sscanf(string(e.Payload), "w%d-t%d-%d", &w, &tx, &i)
		require.NoError(t, err)
		if lastTx[e.Key] == nil {
			lastTx[e.Key] = map[int]string{}
		}
		pos := fmt.Sprintf("t%03d-%03d", tx, i)
		require.Greater(t, pos, lastTx[e.Key][w], "writer %d's events of %s out of commit order", w, e.Key)
		lastTx[e.Key][w] = pos
	}
}

func payloads(es []outbox.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Payload)
	}
	return out
}

func TestARelayKilledBetweenSinkAndMarkDeliversAgain(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	publish(t, u, "t", "k", "x")
	var calls atomic.Int64
	sink := outbox.SinkFunc(func(ctx context.Context, e outbox.Event) error {
		if calls.Add(1) == 1 {
			// The relay dies after the sink took the event, before its
			// mark commits: end the session that holds the claim.
			var n int
			err := pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
				WHERE locktype = 'relation' AND relation = 'outbox_events'::regclass
				  AND mode = 'RowShareLock' AND pid <> pg_backend_pid()
				  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
			if err != nil || n != 1 {
				return fmt.Errorf("terminate the relay's session: %d sessions, %w", n, err)
			}
		}
		return nil
	})
	r, err := outbox.NewRelay(pool, sink)
	require.NoError(t, err)
	n, err := r.Drain(t.Context())
	require.Error(t, err, "the mark cannot commit")
	require.Zero(t, n)
	require.Equal(t, 1, count(t, pool, "state = 'pending' AND attempts = 0"), "still pending after the crash")
	// The client sees the FATAL before the terminated backend has exited and
	// released its row lock; until then SKIP LOCKED would pass the event by.
	require.Eventually(t, func() bool {
		var held int
		err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks
			WHERE locktype = 'relation' AND relation = 'outbox_events'::regclass AND pid <> pg_backend_pid()
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&held)
		return err == nil && held == 0
	}, 10*time.Second, 10*time.Millisecond, "the terminated relay session still holds its locks")

	n, err = r.Drain(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.EqualValues(t, 2, calls.Load(), "delivered again: at least once")
	require.Equal(t, 1, count(t, pool, "state = 'delivered' AND attempts = 1"))
}

func TestAFailingEventRetriesHoldsItsKeyBackThenDeadLettersAndReplayDelivers(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	var failing atomic.Bool
	failing.Store(true)
	rec := &recorder{fail: func(e outbox.Event) error {
		if string(e.Payload) == "bad" && failing.Load() {
			return fmt.Errorf("broker says no to attempt %d", e.Attempt)
		}
		return nil
	}}
	var attempts []int
	var mu sync.Mutex
	sink := outbox.SinkFunc(func(ctx context.Context, e outbox.Event) error {
		mu.Lock()
		if string(e.Payload) == "bad" {
			attempts = append(attempts, e.Attempt)
		}
		mu.Unlock()
		return rec.Deliver(ctx, e)
	})
	r, err := outbox.NewRelay(pool, sink, outbox.WithMaxAttempts(3), outbox.WithBackoff(time.Millisecond, 4*time.Millisecond))
	require.NoError(t, err)
	publish(t, u, "t", "k", "bad")
	publish(t, u, "t", "k", "after")
	publish(t, u, "t", "other", "free")
	runRelay(t, r)
	eventually(t, "bad dead-lettered and the rest delivered", func() bool {
		return count(t, pool, "state = 'delivered'") == 2 && count(t, pool, "state = 'dead'") == 1
	})
	mu.Lock()
	require.Equal(t, []int{1, 2, 3}, attempts)
	mu.Unlock()
	got := payloads(rec.got())
	require.ElementsMatch(t, []string{"after", "free"}, got)

	rs := rows(t, pool)
	require.Equal(t, "dead", rs[0].State)
	require.Equal(t, 3, rs[0].Attempts)
	require.Equal(t, "broker says no to attempt 3", *rs[0].LastError)

	dead, err := outbox.ListDead(t.Context(), pool, "", 0, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, "bad", string(dead[0].Payload))
	require.Equal(t, "broker says no to attempt 3", dead[0].LastError)
	require.Equal(t, 3, dead[0].Attempt)

	failing.Store(false)
	n, err := outbox.Replay(t.Context(), pool, dead[0].ID, dead[0].ID+100)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only dead events are replayed")
	eventually(t, "the replayed event delivered", func() bool { return count(t, pool, "state = 'delivered'") == 3 })
	require.Equal(t, 3, rec.len())
	require.Equal(t, 1, count(t, pool, "payload = 'bad' AND attempts = 1"), "a replay starts a fresh count")
}

func TestDeleteDeliveredRemovesOnlyDeliveredEventsOlderThanTheAge(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	for _, p := range []string{"old1", "old2", "old3", "new", "pending", "dead"} {
		publish(t, u, "t", "", p)
	}
	ctx := t.Context()
	_, err := pool.Exec(ctx, `UPDATE outbox_events SET created_at = now() - interval '3 hours' WHERE true`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE outbox_events SET state = 'delivered', delivered_at = now() - interval '2 hours' WHERE payload LIKE 'old%'`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE outbox_events SET state = 'delivered', delivered_at = now() - interval '1 minute' WHERE payload = 'new'`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE outbox_events SET state = 'dead', dead_at = now() - interval '2 hours' WHERE payload = 'dead'`)
	require.NoError(t, err)

	n, err := outbox.DeleteDelivered(ctx, pool, time.Hour, 2) // two batches of 2, one of 0
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	var left []string
	for _, r := range rows(t, pool) {
		left = append(left, r.Payload)
	}
	require.Equal(t, []string{"new", "pending", "dead"}, left)

	_, err = outbox.DeleteDelivered(ctx, pool, -time.Second, 0)
	require.EqualError(t, err, "outbox delete delivered: age -1s must not be negative")
}

func TestNewRelayReportsEveryBadOption(t *testing.T) {
	t.Parallel()
	_, err := outbox.NewRelay(nil, nil, outbox.WithWorkers(0), outbox.WithBackoff(time.Second, time.Millisecond), nil)
	require.EqualError(t, err, "new relay: pool must not be nil\nsink must not be nil\n"+
		"WithWorkers: 0 must be at least 1\noption 2 is nil\nWithBackoff: max 1ms is below base 1s")
}

func TestRunTwiceAtOnceIsRefused(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	r, err := outbox.NewRelay(pool, &recorder{}, outbox.WithoutListen())
	require.NoError(t, err)
	runRelay(t, r)
	eventually(t, "Run running", func() bool { h, _ := r.Health(t.Context()); return h.Running })
	require.ErrorIs(t, r.Run(t.Context()), outbox.ErrRunning)
}

func TestDeleteInboxRemovesOnlyRecordsOlderThanTheAge(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	ctx := t.Context()
	require.NoError(t, u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
		for id := range int64(3) {
			if _, err := outbox.Inbox(ctx, "billing", id+1); err != nil {
				return err
			}
		}
		return nil
	}))
	_, err := pool.Exec(ctx, "UPDATE outbox_inbox SET processed_at = now() - interval '40 days' WHERE event_id < 3")
	require.NoError(t, err)
	n, err := outbox.DeleteInbox(ctx, pool, 30*24*time.Hour, 1)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	rs, err := pool.Query(ctx, "SELECT event_id FROM outbox_inbox")
	require.NoError(t, err)
	left, err := pgx.CollectRows(rs, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Equal(t, []int64{3}, left)
}

func TestTheClaimServesKeysRoundRobinAndUnkeyedEventsByTurns(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	const keys, perKey, unkeyed = 6, 3, 4
	for k := range keys { // key by key: in id order, k0's three events come first
		for i := range perKey {
			publish(t, u, "t", fmt.Sprintf("k%d", k), fmt.Sprint(i))
		}
	}
	for range unkeyed { // the highest ids
		publish(t, u, "t", "", "u")
	}
	rec := &recorder{}
	r, err := outbox.NewRelay(pool, rec, outbox.WithBatchSize(2))
	require.NoError(t, err)
	n, err := r.Drain(t.Context())
	require.NoError(t, err)
	require.Equal(t, keys*perKey+unkeyed, n)
	got := rec.got()

	firstUnkeyed, lastUnkeyed := -1, -1
	var keyed []outbox.Event
	for i, e := range got {
		if e.Key == "" {
			lastUnkeyed = i
			if firstUnkeyed < 0 {
				firstUnkeyed = i
			}
			continue
		}
		keyed = append(keyed, e)
	}
	require.Less(t, lastUnkeyed, 4*2, "claims take unkeyed events first every other round: all four within the first four rounds")
	require.Positive(t, firstUnkeyed, "the first round takes keyed events first")
	seen := map[string]int{}
	for i, e := range keyed {
		require.Equal(t, i/keys, seen[e.Key], "event %d of key %s before every key had its turn", seen[e.Key], e.Key)
		require.Equal(t, fmt.Sprint(seen[e.Key]), string(e.Payload), "key %s in order", e.Key)
		seen[e.Key]++
	}
	require.Equal(t, keys*perKey+unkeyed, count(t, pool, "state = 'delivered' AND attempts = 1"))
}
