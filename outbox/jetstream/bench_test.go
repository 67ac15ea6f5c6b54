package jetstream_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/outbox/jetstream"
	"github.com/cortexerp/datalayer/uow"
)

// BenchmarkRelayDrain measures what JetStream costs a relay: each round
// publishes the same events twice and drains them once to a sink that does
// nothing (the baseline) and once to JetStream, in alternating order, and
// reports both per event and their ratio: the median, and the lowest and
// highest of the rounds.
//
//	go test ./outbox/jetstream/ -run '^$' -bench RelayDrain -benchtime 8x
func BenchmarkRelayDrain(b *testing.B) {
	const events = 200
	pool := dbtest.New(b, dbtest.WithMigrations(outbox.Migrations()), dbtest.WithMaxConns(16))
	f := newNATS(b)
	sink, err := jetstream.NewSink(f.js)
	require.NoError(b, err)
	noop := outbox.SinkFunc(func(context.Context, outbox.Event) error { return nil })
	u := uow.New(pool, bindDB)
	drain := func(s outbox.Sink) time.Duration {
		msgs := make([]outbox.Message, events)
		for i := range msgs {
			msgs[i] = outbox.Message{Topic: "order.placed", Key: fmt.Sprintf("k%d", i%16), Payload: []byte(`{"n":1}`)}
		}
		require.NoError(b, u.Do(b.Context(), func(ctx context.Context, _ uow.DBTX) error {
			return outbox.PublishBatch(ctx, msgs...)
		}))
		r, err := outbox.NewRelay(pool, s, outbox.WithBatchSize(16))
		require.NoError(b, err)
		start := time.Now()
		n, err := r.Drain(b.Context())
		took := time.Since(start)
		require.NoError(b, err)
		require.Equal(b, events, n)
		return took
	}
	var base, js, ratios []float64
	round := 0
	for b.Loop() {
		var tb, tj time.Duration
		if round%2 == 0 {
			tb, tj = drain(noop), drain(sink)
		} else {
			tj, tb = drain(sink), drain(noop)
		}
		round++
		base = append(base, float64(tb.Nanoseconds())/events)
		js = append(js, float64(tj.Nanoseconds())/events)
		ratios = append(ratios, float64(tj)/float64(tb))
	}
	b.ReportMetric(median(base), "ns/event-noop")
	b.ReportMetric(median(js), "ns/event-jetstream")
	b.ReportMetric(median(ratios), "jetstream/noop")
	b.ReportMetric(slices.Min(ratios), "jetstream/noop-min")
	b.ReportMetric(slices.Max(ratios), "jetstream/noop-max")
	b.ReportMetric(0, "ns/op") // a round's time says nothing: see the metrics above
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
