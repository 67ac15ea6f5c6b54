package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cortexerp/datalayer/outbox"
)

// syncBuffer is a log destination safe for the relay's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTheRelayCountsDeliveriesRetriesAndDeadLettersWithoutLoggingPayloads(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.WithoutCancel(t.Context())) })
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	var logs syncBuffer
	var flaky atomic.Bool
	sink := outbox.SinkFunc(func(_ context.Context, e outbox.Event) error {
		switch string(e.Payload) {
		case "secret-dead":
			return errors.New("rejected")
		case "secret-flaky":
			if !flaky.Swap(true) {
				return errors.New("try again")
			}
		}
		return nil
	})
	r, err := outbox.NewRelay(pool, sink, outbox.WithMaxAttempts(2), outbox.WithBackoff(time.Millisecond, time.Millisecond),
		outbox.WithMeterProvider(mp), outbox.WithTracerProvider(tp),
		outbox.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	publish(t, u, "t", "a", "secret-ok")
	publish(t, u, "t", "b", "secret-flaky")
	publish(t, u, "t", "c", "secret-dead")
	runRelay(t, r)
	eventually(t, "two delivered, one dead", func() bool {
		return count(t, pool, "state = 'delivered'") == 2 && count(t, pool, "state = 'dead'") == 1
	})

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	sums := map[string]int64{}
	hists := map[string]uint64{}
	gauges := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					sums[m.Name] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					hists[m.Name] += p.Count
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					gauges[m.Name] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					gauges[m.Name] = p.Value
				}
			}
		}
	}
	require.Equal(t, map[string]int64{"outbox.events.delivered": 2, "outbox.events.retried": 2, "outbox.events.dead_lettered": 1}, sums)
	require.Equal(t, map[string]uint64{"outbox.delivery.duration": 5, "outbox.relay.lag": 2}, hists)
	require.Equal(t, map[string]float64{"outbox.events.pending": 0, "outbox.events.oldest_pending_age": 0}, gauges)

	require.Len(t, spans.Ended(), 5, "a span per delivery")
	out := logs.String()
	require.Contains(t, out, "outbox event dead-lettered")
	require.Contains(t, out, "error=rejected")
	require.NotContains(t, out, "secret", "no payload in logs unless WithLogPayloads")
}

func TestHealthReportsAStuckRelay(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	r, err := outbox.NewRelay(pool, &recorder{}, outbox.WithStuckAfter(50*time.Millisecond), outbox.WithoutListen())
	require.NoError(t, err)
	h, err := r.Health(t.Context())
	require.NoError(t, err)
	require.False(t, h.Running)
	require.False(t, h.Listening)

	publish(t, u, "t", "k", "x") // and nobody delivers it
	eventually(t, "the relay reported stuck", func() bool {
		_, err := r.Health(t.Context())
		return errors.Is(err, outbox.ErrStuck)
	})
	h, err = r.Health(t.Context())
	require.ErrorIs(t, err, outbox.ErrStuck)
	require.True(t, h.Stuck)
	require.EqualValues(t, 1, h.Ready)
	require.Contains(t, err.Error(), "1 events ready, the oldest for ")

	_, err = r.Drain(t.Context())
	require.NoError(t, err)
	h, err = r.Health(t.Context())
	require.NoError(t, err)
	require.False(t, h.Stuck)
	require.Zero(t, h.Pending)
}

func TestWithoutListenTheRelayPollsAndSaysSo(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	rec := &recorder{}
	r, err := outbox.NewRelay(pool, rec, outbox.WithoutListen(), outbox.WithPollInterval(10*time.Millisecond))
	require.NoError(t, err)
	runRelay(t, r)
	publish(t, u, "t", "k", "x")
	eventually(t, "the event delivered by polling", func() bool { return count(t, pool, "state = 'delivered'") == 1 })
	h, err := r.Health(t.Context())
	require.NoError(t, err)
	require.False(t, h.Listening)
	require.Equal(t, "disabled (WithoutListen)", h.ListenErr)
}
