package uow_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/uow"
)

// BenchmarkAllocUow and BenchmarkAllocPgx report the memory one
// single-statement transaction costs each way (most of uow's is pgx's
// pipeline machinery for the batch that carries BEGIN):
//
//	go test ./uow -run '^$' -bench Alloc -benchtime 2000x
func BenchmarkAllocUow(b *testing.B) {
	pool, _ := newDBWith(b, func(c *pgxpool.Config) { c.MaxConns = 1 })
	u := uow.New(pool, newStore)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if err := u.Do(ctx, func(ctx context.Context, q *store) error { _, err := q.db.Exec(ctx, benchStmt, 1); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAllocPgx(b *testing.B) {
	pool, _ := newDBWith(b, func(c *pgxpool.Config) { c.MaxConns = 1 })
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, benchStmt, 1); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocTPCB reports the allocations of one TPC-B-shaped
// transaction (UPDATE, SELECT, UPDATE, UPDATE, INSERT) through uow, with and
// without write-behind, and through hand-written pgx:
//
//	go test ./uow -run '^$' -bench AllocTPCB -benchtime 2000x
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
	b.Run("pgx", func(b *testing.B) {
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
}
