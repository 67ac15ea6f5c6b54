package uow_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/uow"
)

// The allocation benchmarks report what one unit of work costs through uow,
// through pgx's own BeginFunc (one round trip per statement, BEGIN and
// COMMIT included), and through hand-written pgx that sends what uow sends
// in the same round trips ("pgx-same-trips"): BEGIN, the first statement and
// the transaction-id probe in one batch, COMMIT (with the deferred
// statements, under write-behind) in another. pgx-same-trips is the floor:
// what pgx itself allocates for uow's round trips, which uow cannot go below
// without changing pgx; uow's own cost is the difference.
//
//	go test ./uow -run '^$' -bench Alloc -benchtime 2000x

// BenchmarkAllocOne reports the allocations of a single-statement unit of
// work.
func BenchmarkAllocOne(b *testing.B) {
	pool, _ := newDBWith(b, func(c *pgxpool.Config) { c.MaxConns = 1 })
	u := uow.New(pool, newStore)
	ctx := b.Context()
	b.Run("uow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := u.Do(ctx, func(ctx context.Context, q *store) error { _, err := q.db.Exec(ctx, benchStmt, 1); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pgx-BeginFunc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, benchStmt, 1); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pgx-same-trips", func(b *testing.B) {
		var tb tripBatch
		b.ReportAllocs()
		for b.Loop() {
			if err := sameTrips(ctx, pool, &tb, func(tb *tripBatch) { tb.queue(benchStmt, 1) }, execOne, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The options of a serializable unit of work that retries.
	b.Run("uow-options", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := u.Do(ctx, func(ctx context.Context, q *store) error { _, err := q.db.Exec(ctx, benchStmt, 1); return err },
				uow.Isolation(pgx.Serializable), uow.Retry(uow.DefaultRetry), uow.Name("move"))
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	// A nested call around the statement: SAVEPOINT and RELEASE ride with
	// the statement and COMMIT (pgx: two round trips of their own).
	b.Run("uow-nested", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := u.Do(ctx, func(ctx context.Context, q *store) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error { _, err := q.db.Exec(ctx, benchStmt, 1); return err })
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pgx-BeginFunc-nested", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				return pgx.BeginFunc(ctx, tx, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, benchStmt, 1); return err })
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAllocTPCB reports the allocations of one TPC-B-shaped
// transaction (UPDATE, SELECT, UPDATE, UPDATE, INSERT) through uow, with and
// without write-behind, through pgx.BeginFunc, and through hand-written pgx
// in uow's round trips, each way.
func BenchmarkAllocTPCB(b *testing.B) {
	pool, _ := newDBWith(b, func(c *pgxpool.Config) { c.MaxConns = 1 })
	ctx := b.Context()
	_, err := pool.Exec(ctx, "ALTER TABLE items DROP CONSTRAINT items_pkey")
	if err != nil {
		b.Fatal(err)
	}
	for _, wb := range []bool{false, true} {
		var opts []uow.Option
		name := "uow"
		if wb {
			opts, name = append(opts, uow.WithWriteBehind()), "uow-write-behind"
		}
		u := uow.New(pool, newStore, opts...)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := u.Do(ctx, func(ctx context.Context, q *store) error { return tpcb(ctx, q, 1) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("pgx-BeginFunc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				var bal int
				if _, err := tx.Exec(ctx, accountMoveSQL, 1, -1); err != nil {
					return err
				}
				if err := tx.QueryRow(ctx, accountGetSQL, 1).Scan(&bal); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, accountMoveSQL, 2, 1); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, accountMoveSQL, 1, 0); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, historyWriteSQL, 1)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pgx-same-trips", func(b *testing.B) {
		var tb tripBatch
		b.ReportAllocs()
		for b.Loop() {
			err := sameTrips(ctx, pool, &tb, func(tb *tripBatch) { tb.queue(accountMoveSQL, 1, -1) }, execOne, func(c *pgx.Conn) error {
				var bal int
				if err := c.QueryRow(ctx, accountGetSQL, 1).Scan(&bal); err != nil {
					return err
				}
				if _, err := c.Exec(ctx, accountMoveSQL, 2, 1); err != nil {
					return err
				}
				if _, err := c.Exec(ctx, accountMoveSQL, 1, 0); err != nil {
					return err
				}
				_, err := c.Exec(ctx, historyWriteSQL, 1)
				return err
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pgx-same-trips-write-behind", func(b *testing.B) {
		var tb tripBatch
		b.ReportAllocs()
		for b.Loop() {
			err := sameTrips(ctx, pool, &tb, func(tb *tripBatch) {
				tb.queue(accountMoveSQL, 1, -1)
				tb.queue(accountGetSQL, 1)
			}, func(br pgx.BatchResults) error {
				if _, err := br.Exec(); err != nil {
					return err
				}
				var bal int
				return br.QueryRow().Scan(&bal)
			}, nil, func(tb *tripBatch) {
				tb.queue(accountMoveSQL, 2, 1)
				tb.queue(accountMoveSQL, 1, 0)
				tb.queue(historyWriteSQL, 1)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

const sameTripsProbe = "SELECT pg_current_xact_id_if_assigned()::text"

// tripBatch is a pgx.Batch whose queries live in fixed slots, reused from one
// transaction to the next as uow reuses its own.
type tripBatch struct {
	b pgx.Batch
	q [8]pgx.QueuedQuery
	p [8]*pgx.QueuedQuery
}

func (t *tripBatch) reset() *pgx.Batch {
	t.b.QueuedQueries = t.p[:0]
	return &t.b
}

func (t *tripBatch) queue(sql string, args ...any) {
	i := len(t.b.QueuedQueries)
	t.q[i] = pgx.QueuedQuery{SQL: sql, Arguments: args}
	t.b.QueuedQueries = append(t.b.QueuedQueries, &t.q[i])
}

// sameTrips runs on one connection what uow sends for a unit of work: a
// batch of BEGIN, first's queries (read by readFirst) and the
// transaction-id probe (read raw), then rest's statements, then a batch of
// last's queries and COMMIT.
func sameTrips(ctx context.Context, pool *pgxpool.Pool, tb *tripBatch, first func(*tripBatch), readFirst func(pgx.BatchResults) error, rest func(*pgx.Conn) error, last func(*tripBatch)) error {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer pc.Release()
	c := pc.Conn()
	b := tb.reset()
	tb.queue("BEGIN")
	first(tb)
	tb.queue(sameTripsProbe)
	br := c.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return err
	}
	if err := readFirst(br); err != nil {
		_ = br.Close()
		return err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return err
	}
	var xid uint64
	if rows.Next() {
		xid, err = strconv.ParseUint(string(rows.RawValues()[0]), 10, 64)
	}
	rows.Close()
	if err := errors.Join(err, rows.Err(), br.Close()); err != nil {
		return err
	}
	if xid == 0 {
		return errors.New("no transaction id")
	}
	if rest != nil {
		if err := rest(c); err != nil {
			_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return err
		}
	}
	if last == nil {
		_, err = c.Exec(ctx, "COMMIT")
		return err
	}
	b = tb.reset()
	last(tb)
	tb.queue("COMMIT")
	return c.SendBatch(ctx, b).Close()
}

func execOne(br pgx.BatchResults) error {
	_, err := br.Exec()
	return err
}
