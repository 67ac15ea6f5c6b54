package outbox_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

// benchPollInterval is the polling relay's interval in BenchmarkWakeUp.
const benchPollInterval = 100 * time.Millisecond

// BenchmarkWakeUp measures the latency from an event's COMMIT returning to
// its sink being called, one event at a time, for a relay woken by
// LISTEN/NOTIFY (its poll interval an hour, so only notifications wake it)
// and, side by side, a relay that only polls every 100 ms (WithoutListen).
// Each iteration publishes one event to each, alternately, each relay on a
// database of its own. It reports p50 and p99 of both and the ratio of the
// p50s (poll / listen) per fifth of the run, min..max:
//
//	go test ./outbox -run '^$' -bench WakeUp -benchtime 200x -count 3
func BenchmarkWakeUp(b *testing.B) {
	type side struct {
		u   work
		got chan time.Time
		lat []time.Duration
	}
	start := func(listening bool, opts ...outbox.RelayOption) *side {
		pool := dbtest.New(b, dbtest.WithMigrations(outbox.Migrations()))
		s := &side{u: uow.New(pool, bindDB), got: make(chan time.Time, 1)}
		r, err := outbox.NewRelay(pool, outbox.SinkFunc(func(context.Context, outbox.Event) error {
			s.got <- time.Now()
			return nil
		}), opts...)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		b.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		})
		deadline := time.Now().Add(testTimeout)
		for {
			h, _ := r.Health(ctx)
			if h.Running && h.Listening == listening {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("relay did not start")
			}
			time.Sleep(time.Millisecond) // polling a condition
		}
		return s
	}
	listen := start(true, outbox.WithPollInterval(time.Hour))
	poll := start(false, outbox.WithoutListen(), outbox.WithPollInterval(benchPollInterval))
	one := func(s *side) {
		err := s.u.Do(context.Background(), func(ctx context.Context, _ uow.DBTX) error {
			return outbox.Publish(ctx, "bench", "k", []byte("x"))
		})
		committed := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-s.got:
			s.lat = append(s.lat, at.Sub(committed))
		case <-time.After(testTimeout):
			b.Fatal("event not delivered")
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			one(listen)
			one(poll)
		} else {
			one(poll)
			one(listen)
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(pct(listen.lat, 50)), "listen-p50-ms")
	b.ReportMetric(ms(pct(listen.lat, 99)), "listen-p99-ms")
	b.ReportMetric(ms(pct(poll.lat, 50)), "poll-p50-ms")
	b.ReportMetric(ms(pct(poll.lat, 99)), "poll-p99-ms")
	b.ReportMetric(0, "ns/op")
	if b.N >= 10 {
		var ratios []float64
		for r := range 5 {
			lo, hi := r*b.N/5, (r+1)*b.N/5
			ratios = append(ratios, float64(pct(poll.lat[lo:hi], 50))/float64(pct(listen.lat[lo:hi], 50)))
		}
		slices.Sort(ratios)
		b.Logf("poll/listen p50 ratio per fifth: median %.1fx, range %.1fx..%.1fx (%d events each)",
			ratios[2], ratios[0], ratios[4], b.N)
	}
}

// pct is the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)]
}
