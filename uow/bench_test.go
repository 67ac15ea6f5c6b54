package uow_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/uow"
)

const benchStmt = "UPDATE accounts SET balance = balance + 1 WHERE id = $1"

// BenchmarkDoVsPgx runs uow.Do and hand-written pgx.BeginFunc side by side,
// alternating every iteration so that drift hits both alike, and reports
// each one's time per transaction and the throughput ratio uow/pgx
// ("x-pgx": above 1 means uow is faster).
//
//	go test ./uow -run '^$' -bench DoVsPgx -benchtime 3000x
func BenchmarkDoVsPgx(b *testing.B) {
	pool, _ := newDBWith(b, func(c *pgxpool.Config) { c.MaxConns = 1 })
	u := uow.New(pool, newStore)
	ctx := b.Context()
	for _, stmts := range []int{1, 5} {
		for _, depth := range []int{0, 1} {
			b.Run(fmt.Sprintf("stmts=%d/depth=%d", stmts, depth), func(b *testing.B) {
				work := func(ctx context.Context, db uow.DBTX) error {
					for i := range stmts {
						if _, err := db.Exec(ctx, benchStmt, 1+i%2); err != nil {
							return err
						}
					}
					return nil
				}
				viaPgx := func() error {
					return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						if depth == 0 {
							return work(ctx, tx)
						}
						return pgx.BeginFunc(ctx, tx, func(tx pgx.Tx) error { return work(ctx, tx) })
					})
				}
				viaUow := func() error {
					return u.Do(ctx, func(ctx context.Context, q *store) error {
						if depth == 0 {
							return work(ctx, q.db)
						}
						return u.Do(ctx, func(ctx context.Context, q *store) error { return work(ctx, q.db) })
					})
				}
				var tPgx, tUow time.Duration
				timeIt := func(run func() error) time.Duration {
					start := time.Now()
					if err := run(); err != nil {
						b.Fatal(err)
					}
					return time.Since(start)
				}
				timeIt(viaPgx) // warm the statement cache
				timeIt(viaUow)
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if i%2 == 0 {
						tPgx += timeIt(viaPgx)
						tUow += timeIt(viaUow)
					} else {
						tUow += timeIt(viaUow)
						tPgx += timeIt(viaPgx)
					}
				}
				n := float64(b.N)
				b.ReportMetric(float64(tPgx.Nanoseconds())/n, "pgx-ns/tx")
				b.ReportMetric(float64(tUow.Nanoseconds())/n, "uow-ns/tx")
				b.ReportMetric(float64(tPgx)/float64(tUow), "x-pgx")
			})
		}
	}
}
