package dbtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/peterldowns/pgtestdb"

	"github.com/cortexerp/datalayer/internal/testdb"
)

// roundTB is the tb of one benchmark round: its cleanups run when the round
// ends, as a test's do when it ends.
type roundTB struct {
	testing.TB
	ctx      context.Context
	cancel   context.CancelFunc
	cleanups []func()
}

func newRoundTB(b *testing.B) *roundTB {
	ctx, cancel := context.WithCancel(context.Background())
	return &roundTB{TB: b, ctx: ctx, cancel: cancel}
}

func (r *roundTB) Context() context.Context { return r.ctx }
func (r *roundTB) Cleanup(f func())         { r.cleanups = append(r.cleanups, f) }

// end runs the round's cleanups, last registered first.
func (r *roundTB) end() {
	r.cancel()
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// timings collects the durations of one variant.
type timings []time.Duration

func (ts timings) quantile(q float64) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ratios returns the median, 10th and 90th percentile of base[i]/x[i], the
// rounds paired.
func ratios(base, x timings) (med, lo, hi float64) {
	r := make([]float64, len(x))
	for i := range x {
		r[i] = float64(base[i]) / float64(max(x[i], time.Microsecond))
	}
	slices.Sort(r)
	at := func(q float64) float64 { return r[min(len(r)-1, int(q*float64(len(r))))] }
	return at(0.5), at(0.1), at(0.9)
}

// BenchmarkNew measures, in the same run and interleaved round by round,
// what a test waits for to get a migrated database (the repository's
// db/migrations), each ending with an open, pinged pool:
//
//   - warm: dbtest.New when the clones made ahead are ready (a suite whose
//     tests take longer than a clone, waited for outside the measurement);
//   - cold: dbtest.New when none is ready (the first test of a process, or a
//     suite that asks faster than clones are made);
//   - pgtestdb: pgtestdb.Custom's plain clone of the same template, as
//     dbtest.New did before it made clones ahead;
//   - Tx: dbtest.Tx and its first statement, the test's transaction begun.
//
// Each round ends as a passing test does (its database dropped, in the
// background for dbtest). It reports the median and p95 of each in ms and
// the ratio pgtestdb / each with its 10th-90th percentile spread over the
// rounds. Run: go test ./dbtest -run '^$' -bench New -benchtime 40x
func BenchmarkNew(b *testing.B) {
	warm0 := newRoundTB(b)
	newPool(warm0, nil) // server started, template migrated, clones under way
	warm0.end()
	p := procState.p
	tp := templateFor(b, config{})
	base := p.base
	m, err := testdb.NewMigrator(defaultMigrations(b), "dbtest-goose-")
	if err != nil {
		b.Fatal(err)
	}
	cold := &supply{p: p, tpl: tp.name} // size 0: it clones on demand, as New does with none ready
	var warm, coldT, plain, txT timings
	variants := []func(){
		func() {
			waitReady(b, tp.supply)
			r := newRoundTB(b)
			t0 := time.Now()
			pingPool(b, newPool(r, nil))
			warm = append(warm, time.Since(t0))
			r.end()
		},
		func() {
			r := newRoundTB(b)
			t0 := time.Now()
			c, err := cold.take(r.ctx)
			if err != nil {
				b.Fatal(err)
			}
			pool, err := openPool(r.ctx, c.url, DefaultMaxConns)
			if err != nil {
				b.Fatal(err)
			}
			pingPool(b, pool)
			coldT = append(coldT, time.Since(t0))
			pool.Close()
			p.dropLater(c.name)
			r.end()
		},
		func() {
			tb := &testdb.TB{}
			t0 := time.Now()
			inst, err := tb.Run(func() *pgtestdb.Config { return pgtestdb.Custom(tb, base, m) })
			if err != nil {
				b.Fatal(err)
			}
			pool, err := pgxpool.New(context.Background(), inst.URL())
			if err != nil {
				b.Fatal(err)
			}
			pingPool(b, pool)
			plain = append(plain, time.Since(t0))
			pool.Close()
			tb.Finish() // pgtestdb drops it
		},
		func() {
			r := newRoundTB(b)
			t0 := time.Now()
			ctx, pool := tx(r, nil)
			if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
				b.Fatal(err)
			}
			txT = append(txT, time.Since(t0))
			r.end()
		},
	}
	i := 0
	for b.Loop() {
		for k := range variants {
			variants[(i+k)%len(variants)]()
		}
		i++
	}
	b.StopTimer()
	var out strings.Builder
	fmt.Fprintf(&out, "\n%d rounds, interleaved; ms           median    p95   pgtestdb/x (p10-p90)\n", len(warm))
	for _, v := range []struct {
		name string
		ts   timings
	}{{"dbtest.New, warm", warm}, {"dbtest.New, cold", coldT}, {"pgtestdb plain clone", plain}, {"dbtest.Tx", txT}} {
		med, lo, hi := ratios(plain, v.ts)
		fmt.Fprintf(&out, "%-38s %7.2f %7.2f   %6.1fx (%.1f-%.1f)\n", v.name, ms(v.ts.quantile(0.5)), ms(v.ts.quantile(0.95)), med, lo, hi)
	}
	b.Log(out.String())
	for _, v := range []struct {
		unit string
		ts   timings
	}{{"warm", warm}, {"cold", coldT}, {"pgtestdb", plain}, {"tx", txT}} {
		b.ReportMetric(ms(v.ts.quantile(0.5)), v.unit+"-ms-median")
		b.ReportMetric(ms(v.ts.quantile(0.95)), v.unit+"-ms-p95")
	}
	b.ReportMetric(0, "ns/op") // the rounds are not comparable operations
}

// waitReady waits until s holds a clone for every one it may hold.
func waitReady(b *testing.B, s *supply) {
	deadline := time.Now().Add(time.Minute)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		s.lock()
		full := len(s.ready) == s.size
		s.unlock()
		if full {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("the clones made ahead were not ready within a minute")
		}
		time.Sleep(wait) // outside the measurement: waiting for the background clones
	}
}

func pingPool(b *testing.B, pool *pgxpool.Pool) {
	if err := pool.Ping(context.Background()); err != nil {
		b.Fatal(err)
	}
}
