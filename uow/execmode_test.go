package uow_test

import (
	"context"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

// TestEveryExecMode runs nesting, a failing nested statement that was never
// prepared, batches and COPY in each pgx exec mode (PgBouncer setups use
// exec or simple_protocol).
func TestEveryExecMode(t *testing.T) {
	t.Parallel()
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, _ := newDBWith(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			u := uow.New(pool, newStore)
			err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
				if err := q.put(ctx, 1, "a"); err != nil {
					return err
				}
				// A statement that cannot even be prepared, first thing in a
				// savepoint: only the savepoint may roll back.
				err := u.Do(ctx, func(ctx context.Context, q *store) error {
					_, err := q.db.Exec(ctx, "INSERT INTO items (id, no_such_column) VALUES (2, 'x')")
					return err
				})
				if sqlState(err) != pgerrcode.UndefinedColumn {
					return err
				}
				if err := u.Do(ctx, func(ctx context.Context, q *store) error {
					b := &pgx.Batch{}
					b.Queue("INSERT INTO items (id, note) VALUES ($1, $2)", 3, "batch")
					b.Queue("INSERT INTO items (id, note) VALUES ($1, $2)", 4, "batch")
					return q.db.SendBatch(ctx, b).Close()
				}); err != nil {
					return err
				}
				_, err = q.db.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id", "note"}, pgx.CopyFromRows([][]any{{5, "copy"}}))
				return err
			})
			require.NoError(t, err)
			require.Equal(t, []int{1, 3, 4, 5}, ids(t, pool))
			requireIdle(t, pool)
		})
	}
}
