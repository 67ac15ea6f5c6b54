package erp_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/erp"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

// storedEvent is an outbox_events row as the tests read it.
type storedEvent struct {
	ID      int64
	Topic   string
	Key     string
	Payload []byte
	State   string
}

// events reads the outbox's events in id order.
func (f fixture) events(t *testing.T) []storedEvent {
	t.Helper()
	rows, err := f.pool.Query(context.WithoutCancel(t.Context()), "SELECT id, topic, key, payload, state FROM outbox_events ORDER BY id")
	require.NoError(t, err)
	evs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[storedEvent])
	require.NoError(t, err)
	return evs
}

// recorder is a sink that records what it is handed.
type recorder struct {
	mu  sync.Mutex
	got []outbox.Event
}

func (r *recorder) Deliver(_ context.Context, e outbox.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
	return nil
}

func (f fixture) placeOrders(t *testing.T, n int) []erp.Order {
	t.Helper()
	id := f.products(t, int32(n), "1.00", "0.2")[0]
	var orders []erp.Order
	for range n {
		o, err := f.svc.PlaceOrder(t.Context(), f.order(erp.Item{ProductID: id, Quantity: 1}))
		require.NoError(t, err)
		orders = append(orders, o)
	}
	return orders
}

func TestAnOrdersEventsAreDeliveredInOrderUnderItsKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	orders := f.placeOrders(t, 3)
	_, err := f.svc.PayOrder(t.Context(), orders[0].ID)
	require.NoError(t, err)
	_, err = f.svc.CancelOrder(t.Context(), orders[0].ID)
	require.NoError(t, err)
	_, err = f.svc.CancelOrder(t.Context(), orders[2].ID)
	require.NoError(t, err)

	var rec recorder
	relay, err := f.svc.NewRelay(&rec)
	require.NoError(t, err)
	n, err := relay.Drain(t.Context())
	require.NoError(t, err)
	require.Equal(t, 6, n)

	byKey := map[string][]string{}
	for _, e := range rec.got {
		var ev erp.OrderEvent
		require.NoError(t, json.Unmarshal(e.Payload, &ev))
		require.Equal(t, erp.OrderKey(ev.OrderID), e.Key)
		byKey[e.Key] = append(byKey[e.Key], e.Topic+" "+string(ev.Status))
	}
	require.Equal(t, map[string][]string{
		erp.OrderKey(orders[0].ID): {"order.placed pending", "order.paid paid", "order.cancelled cancelled"},
		erp.OrderKey(orders[1].ID): {"order.placed pending"},
		erp.OrderKey(orders[2].ID): {"order.placed pending", "order.cancelled cancelled"},
	}, byKey)
	for _, e := range f.events(t) {
		require.Equal(t, "delivered", e.State, "event %d", e.ID)
	}
}

func TestAnOrderThatRollsBackPublishesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 5, "1.00", "0.2")
	errAbandon := errors.New("the caller's unit of work fails")
	// PlaceOrder joins the caller's unit of work: its event goes with it.
	err := uow.New(f.pool, dbgen.New).Do(t.Context(), func(ctx context.Context, _ *dbgen.Queries) error {
		_, err := f.svc.PlaceOrder(ctx, f.order(erp.Item{ProductID: ids[0], Quantity: 1}))
		require.NoError(t, err)
		return errAbandon
	})
	require.ErrorIs(t, err, errAbandon)
	require.Empty(t, f.events(t))
	require.Zero(t, f.count(t, "SELECT count(*) FROM orders"))
}

func TestARunningRelayIsWokenByACommittedOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 5, "1.00", "0.2")
	seen := make(chan outbox.Event, 10)
	relay, err := f.svc.NewRelay(outbox.SinkFunc(func(_ context.Context, e outbox.Event) error {
		seen <- e
		return nil
	}), outbox.WithPollInterval(time.Hour)) // no polling: LISTEN/NOTIFY wakes it
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	o, err := f.svc.PlaceOrder(t.Context(), f.order(erp.Item{ProductID: ids[0], Quantity: 1}))
	require.NoError(t, err)
	select {
	case e := <-seen:
		require.Equal(t, erp.TopicOrderPlaced, e.Topic)
		require.Equal(t, erp.OrderKey(o.ID), e.Key)
	case <-time.After(10 * time.Second):
		t.Fatal("the relay was not woken by the committed order")
	}
}
