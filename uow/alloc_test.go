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
