package uow_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

// TestRoundTrips counts round trips on the wire, on one warmed connection
// (statements already prepared, as in a long-running service).
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	pool, w := newDBWith(t, func(c *pgxpool.Config) { c.MaxConns = 1 })
	u := uow.New(pool, newStore)
	ctx := t.Context()
	id := 0
	insert := func(ctx context.Context, q *store) error { id++; return q.put(ctx, id, "x") }

	kit := map[string]func() error{
		"1 statement": func() error { return u.Do(ctx, insert) },
		"empty unit of work": func() error {
			return u.Do(ctx, func(context.Context, *store) error { return nil })
		},
		"1 statement and an empty nested call": func() error {
			return u.Do(ctx, func(ctx context.Context, q *store) error {
				if err := insert(ctx, q); err != nil {
					return err
				}
				return u.Do(ctx, func(context.Context, *store) error { return nil })
			})
		},
		"1 statement in a nested call": func() error {
			return u.Do(ctx, func(ctx context.Context, q *store) error { return u.Do(ctx, insert) })
		},
		"1 statement, then 1 in a nested call": func() error {
			return u.Do(ctx, func(ctx context.Context, q *store) error {
				if err := insert(ctx, q); err != nil {
					return err
				}
				return u.Do(ctx, insert)
			})
		},
	}
	pgxBaseline := map[string]func() error{
		"1 statement": func() error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return insert(ctx, newStore(tx)) })
		},
		"1 statement, then 1 in a nested call": func() error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if err := insert(ctx, newStore(tx)); err != nil {
					return err
				}
				return pgx.BeginFunc(ctx, tx, func(tx pgx.Tx) error { return insert(ctx, newStore(tx)) })
			})
		},
	}
	measure := func(run func() error) int {
		require.NoError(t, run()) // warm: prepare the statements on the connection
		w.reset()
		require.NoError(t, run())
		return w.count()
	}
	want := map[string]int{
		"1 statement":                          2, // BEGIN+INSERT, COMMIT
		"empty unit of work":                   0,
		"1 statement and an empty nested call": 2,
		"1 statement in a nested call":         2, // BEGIN+SAVEPOINT+INSERT, COMMIT
		"1 statement, then 1 in a nested call": 3, // BEGIN+INSERT, SAVEPOINT+INSERT, COMMIT
	}
	for name, run := range kit {
		require.Equal(t, want[name], measure(run), "uow: %s", name)
	}
	require.Equal(t, 3, measure(pgxBaseline["1 statement"]), "pgx.BeginFunc: BEGIN, INSERT, COMMIT")
	require.Equal(t, 6, measure(pgxBaseline["1 statement, then 1 in a nested call"]), "pgx nested")
}
