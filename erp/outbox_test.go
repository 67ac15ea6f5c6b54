package erp_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/erp"
)

// recorder is a PublishFunc that counts deliveries per event.
type recorder struct {
	mu    sync.Mutex
	times map[int64]int
	fail  func(e erp.Event) error // optional
	seen  chan erp.Event          // optional
}

func (r *recorder) publish(_ context.Context, e erp.Event) error {
	if r.fail != nil {
		if err := r.fail(e); err != nil {
			return err
		}
	}
	r.mu.Lock()
	if r.times == nil {
		r.times = map[int64]int{}
	}
	r.times[e.ID]++
	r.mu.Unlock()
	if r.seen != nil {
		r.seen <- e
	}
	return nil
}

func (f fixture) placeOrders(t *testing.T, n int) {
	t.Helper()
	id := f.products(t, int32(n), "1.00", "0.2")[0]
	for range n {
		_, err := f.svc.PlaceOrder(t.Context(), f.order(erp.Item{ProductID: id, Quantity: 1}))
		require.NoError(t, err)
	}
}

func TestTwoPublishersPublishEachEventOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.placeOrders(t, 60)
	var rec recorder
	slow := func(ctx context.Context, e erp.Event) error {
		time.Sleep(time.Millisecond) // keep batches overlapping
		return rec.publish(ctx, e)
	}

	var wg sync.WaitGroup
	published := make([]int, 2)
	for i := range published {
		p, err := f.svc.NewPublisher(slow, erp.WithBatchSize(5))
		require.NoError(t, err)
		wg.Go(func() {
			n, err := p.PublishPending(t.Context())
			if err == nil {
				published[i] = n
			}
		})
	}
	wg.Wait()

	require.Equal(t, 60, published[0]+published[1])
	require.Len(t, rec.times, 60)
	for id, n := range rec.times {
		require.Equal(t, 1, n, "event %d", id)
	}
	pending, err := f.q.OutboxPendingCount(t.Context())
	require.NoError(t, err)
	require.Zero(t, pending)
}

func TestPublisherRetriesAFailedEventLater(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.placeOrders(t, 5)
	errBroker := errors.New("broker down")
	var failures int
	rec := recorder{fail: func(e erp.Event) error {
		if e.ID == 3 && failures == 0 {
			failures++
			return errBroker
		}
		return nil
	}}
	p, err := f.svc.NewPublisher(rec.publish)
	require.NoError(t, err)

	n, err := p.PublishPending(t.Context())
	require.ErrorIs(t, err, errBroker)
	require.ErrorContains(t, err, "publish event 3 (order.placed)")
	require.Equal(t, 2, n, "events 1 and 2 are published and marked")
	pending, err := f.q.OutboxPendingCount(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(3), pending)

	n, err = p.PublishPending(t.Context())
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, map[int64]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1}, rec.times)
}

func TestPlaceOrderWakesARunningPublisher(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 5, "1.00", "0.2")
	rec := recorder{seen: make(chan erp.Event, 10)}
	p, err := f.svc.NewPublisher(rec.publish, erp.WithPollInterval(time.Hour)) // no polling in this test
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	o, err := f.svc.PlaceOrder(t.Context(), f.order(erp.Item{ProductID: ids[0], Quantity: 1}))
	require.NoError(t, err)
	select {
	case e := <-rec.seen:
		require.Equal(t, erp.TopicOrderPlaced, e.Topic)
		var ev erp.OrderEvent
		require.NoError(t, json.Unmarshal(e.Payload, &ev))
		require.Equal(t, o.ID, ev.OrderID)
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher was not woken by the committed order")
	}
}

func TestNewPublisherChecksItsOptions(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.svc.NewPublisher(nil)
	require.ErrorContains(t, err, "publish func must not be nil")
	_, err = f.svc.NewPublisher(new(recorder).publish, erp.WithBatchSize(0))
	require.ErrorContains(t, err, "WithBatchSize: 0 must be positive")
	_, err = f.svc.NewPublisher(new(recorder).publish, erp.WithPollInterval(-time.Second))
	require.ErrorContains(t, err, "WithPollInterval")
}
