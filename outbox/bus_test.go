package outbox_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

func TestTheBusGivesEachEventToEachSubscriberOfItsTopic(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	bus := outbox.NewBus()
	var mu sync.Mutex
	got := map[string][]string{}
	sub := func(name, topic string, fail *atomic.Int64) {
		_, err := bus.Subscribe(topic, func(_ context.Context, e outbox.Event) error {
			if fail != nil && fail.Add(-1) >= 0 {
				return errors.New(name + " is down")
			}
			mu.Lock()
			defer mu.Unlock()
			got[name] = append(got[name], string(e.Payload))
			return nil
		})
		require.NoError(t, err)
	}
	var flaky atomic.Int64
	flaky.Store(2) // fails twice, then works
	sub("a", "order.placed", nil)
	sub("b", "order.placed", &flaky)
	sub("all", outbox.AllTopics, nil)
	unsub, err := bus.Subscribe("order.placed", func(context.Context, outbox.Event) error {
		t.Error("an unsubscribed handler was called")
		return nil
	})
	require.NoError(t, err)
	unsub()

	publish(t, u, "order.placed", "o1", "p1")
	publish(t, u, "order.paid", "o1", "p2")
	r, err := outbox.NewRelay(pool, bus, outbox.WithBackoff(time.Millisecond, time.Millisecond))
	require.NoError(t, err)
	runRelay(t, r)
	eventually(t, "both events delivered", func() bool { return count(t, pool, "state = 'delivered'") == 2 })

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string][]string{
		"a":   {"p1"},       // not again when b's retries came
		"b":   {"p1"},       // after two failures
		"all": {"p1", "p2"}, // every topic, once each
	}, got)
	require.Equal(t, 1, count(t, pool, "payload = 'p1' AND attempts = 3"))

	_, err = bus.Subscribe("", func(context.Context, outbox.Event) error { return nil })
	require.EqualError(t, err, "outbox bus subscribe: topic must not be empty (AllTopics for every topic)")
}

func TestOnceAppliesARedeliveredEventsEffectOnce(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	ctx := t.Context()
	_, err := pool.Exec(ctx, "CREATE TABLE credits (event_id bigint, amount int)")
	require.NoError(t, err)
	var failAfterEffect atomic.Bool
	handler := outbox.Once(u, "billing", func(ctx context.Context, q uow.DBTX, e outbox.Event) error {
		if _, err := q.Exec(ctx, "INSERT INTO credits VALUES ($1, 10)", e.ID); err != nil {
			return err
		}
		if failAfterEffect.Swap(false) {
			return errors.New("crash before commit") // effect and inbox row roll back together
		}
		return nil
	})
	e := outbox.Event{ID: 42, Topic: "t"}
	failAfterEffect.Store(true)
	require.Error(t, handler(ctx, e))
	require.NoError(t, handler(ctx, e)) // the retry applies it
	require.NoError(t, handler(ctx, e)) // a redelivery: recognised, skipped
	require.NoError(t, handler(ctx, outbox.Event{ID: 42, Topic: "t"}))

	var n, rows int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM credits").Scan(&n))
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM outbox_inbox WHERE consumer = 'billing' AND event_id = 42").Scan(&rows))
	require.Equal(t, 1, n, "the effect happened once")
	require.Equal(t, 1, rows)

	other := outbox.Once(u, "shipping", func(ctx context.Context, q uow.DBTX, e outbox.Event) error {
		_, err := q.Exec(ctx, "INSERT INTO credits VALUES ($1, 20)", e.ID)
		return err
	})
	require.NoError(t, other(ctx, e)) // another consumer has its own inbox
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM credits").Scan(&n))
	require.Equal(t, 2, n)

	_, err = outbox.Inbox(ctx, "billing", 1)
	require.ErrorIs(t, err, outbox.ErrNoUnitOfWork)
}
