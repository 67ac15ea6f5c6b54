package uow_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

// Queries in the shape sqlc generates: the name line tells :exec apart.
const (
	itemPutSQL      = "-- name: ItemPut :exec\nINSERT INTO items (id, note) VALUES ($1, $2)"
	itemTouchSQL    = "-- name: ItemTouch :execrows\nUPDATE items SET note = note || '!' WHERE id = $1"
	accountMoveSQL  = "-- name: AccountMove :exec\nUPDATE accounts SET balance = balance + $2 WHERE id = $1"
	accountGetSQL   = "-- name: AccountGet :one\nSELECT balance FROM accounts WHERE id = $1"
	failFirstSQL    = "-- name: FailFirst :exec\nSELECT fail_first($1, '40001')"
	historyWriteSQL = "-- name: HistoryWrite :exec\nINSERT INTO items (id, note) VALUES ($1, 'history')"
)

func (s *store) putLater(ctx context.Context, id int, note any) error {
	_, err := s.db.Exec(ctx, itemPutSQL, id, note)
	return err
}

func (s *store) move(ctx context.Context, id, delta int) error {
	_, err := s.db.Exec(ctx, accountMoveSQL, id, delta)
	return err
}

func (s *store) balance(ctx context.Context, id int) (int, error) {
	var b int
	err := s.db.QueryRow(ctx, accountGetSQL, id).Scan(&b)
	return b, err
}

// tpcb is the TPC-B transaction's shape: UPDATE, SELECT, UPDATE, UPDATE, INSERT.
func tpcb(ctx context.Context, q *store, id int) error {
	if err := q.move(ctx, 1, -1); err != nil {
		return err
	}
	if _, err := q.balance(ctx, 1); err != nil {
		return err
	}
	if err := q.move(ctx, 2, 1); err != nil {
		return err
	}
	if err := q.move(ctx, 1, 0); err != nil {
		return err
	}
	_, err := q.db.Exec(ctx, historyWriteSQL, id)
	return err
}

func TestWriteBehindRoundTrips(t *testing.T) {
	t.Parallel()
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, w := newDBWith(t, func(c *pgxpool.Config) {
				c.ConnConfig.DefaultQueryExecMode = mode
				c.MaxConns = 1 // one connection: its statement cache is warm after the first run
			})
			trips := map[bool]int{}
			for i, wb := range []bool{false, true} {
				var opts []uow.Option
				if wb {
					opts = append(opts, uow.WithWriteBehind())
				}
				u := uow.New(pool, newStore, opts...)
				run := func(id int) error {
					return u.Do(t.Context(), func(ctx context.Context, q *store) error { return tpcb(ctx, q, id) })
				}
				require.NoError(t, run(10+2*i)) // warm the statement cache
				w.reset()
				require.NoError(t, run(11+2*i))
				trips[wb] = w.count()
			}
			t.Logf("round trips of a TPC-B transaction: %d, with write-behind %d", trips[false], trips[true])
			if mode != pgx.QueryExecModeDescribeExec { // describe_exec describes every statement in a round trip of its own
				require.Equal(t, 6, trips[false], "five statements and COMMIT")
				require.Equal(t, 2, trips[true], "BEGIN + UPDATE + SELECT, then UPDATE, UPDATE, INSERT + COMMIT")
			}
			require.Less(t, trips[true], trips[false])
			b, err := uow.New(pool, newStore).Queries(t.Context()).balance(t.Context(), 1)
			require.NoError(t, err)
			require.Equal(t, 96, b)
			require.Equal(t, []int{10, 11, 12, 13}, ids(t, pool))
		})
	}
}

func TestWriteBehindErrors(t *testing.T) {
	t.Parallel()
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, _ := newDBWith(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			u := uow.New(pool, newStore, uow.WithWriteBehind())
			truncate := func() {
				_, err := pool.Exec(context.WithoutCancel(t.Context()), "TRUNCATE items")
				require.NoError(t, err)
			}

			t.Run("returned by the next statement, naming the query", func(t *testing.T) {
				truncate()
				err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
					if err := q.putLater(ctx, 1, "a"); err != nil {
						return err
					}
					if err := q.putLater(ctx, 1, "duplicate"); err != nil {
						return fmt.Errorf("not deferred: %w", err)
					}
					_, err := q.count(ctx)
					return err
				})
				require.Equal(t, pgerrcode.UniqueViolation, sqlState(err))
				require.ErrorContains(t, err, "uow: deferred ItemPut: ")
				require.Empty(t, ids(t, pool))
				requireIdle(t, pool)
			})
			t.Run("returned by COMMIT", func(t *testing.T) {
				truncate()
				var rolledBack error
				committed := false
				err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
					uow.AfterCommit(ctx, func(context.Context) { committed = true })
					uow.AfterRollback(ctx, func(_ context.Context, err error) { rolledBack = err })
					if err := q.putLater(ctx, 1, "a"); err != nil {
						return err
					}
					return q.putLater(ctx, 1, "duplicate")
				})
				require.Equal(t, pgerrcode.UniqueViolation, sqlState(err))
				require.ErrorContains(t, err, "uow: deferred ItemPut: ")
				require.False(t, committed)
				require.ErrorIs(t, rolledBack, err)
				require.Empty(t, ids(t, pool))
				requireIdle(t, pool)
			})
			t.Run("a nested call's own, its savepoint rolled back alone", func(t *testing.T) {
				truncate()
				err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
					if err := q.putLater(ctx, 1, "outer"); err != nil {
						return err
					}
					err := u.Do(ctx, func(ctx context.Context, q *store) error {
						if err := q.putLater(ctx, 2, "inner"); err != nil {
							return err
						}
						return q.putLater(ctx, 2, "inner duplicate")
					})
					if sqlState(err) != pgerrcode.UniqueViolation {
						return fmt.Errorf("want the nested call's duplicate, got %w", err)
					}
					return q.putLater(ctx, 3, "outer")
				})
				require.NoError(t, err)
				require.Equal(t, []int{1, 3}, ids(t, pool))
			})
			t.Run("an enclosing call's, swallowed by it: nothing commits", func(t *testing.T) {
				truncate()
				_, err := pool.Exec(t.Context(), "INSERT INTO items VALUES (1, 'before')")
				require.NoError(t, err)
				err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
					if err := q.putLater(ctx, 5, "outer"); err != nil {
						return err
					}
					if err := q.putLater(ctx, 1, "outer duplicate"); err != nil {
						return err
					}
					// The nested call's first statement carries the outer's writes.
					inner := u.Do(ctx, func(ctx context.Context, q *store) error {
						_, err := q.count(ctx)
						return err
					})
					require.ErrorContains(t, inner, "uow: deferred ItemPut: ")
					return nil // swallowed
				})
				require.ErrorIs(t, err, uow.ErrRollbackOnly)
				require.Equal(t, []int{1}, ids(t, pool), "nothing of the unit of work may commit")
			})
			t.Run("a statement that could not be sent, swallowed: nothing commits", func(t *testing.T) {
				truncate()
				err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
					if err := q.putLater(ctx, 1, "a"); err != nil {
						return err
					}
					if err := q.putLater(ctx, 2, make(chan int)); err != nil { // pgx cannot encode it
						return err
					}
					_, err := q.count(ctx)
					require.Error(t, err)
					return nil // swallowed: the queued writes are gone
				})
				require.ErrorIs(t, err, uow.ErrRollbackOnly)
				require.Empty(t, ids(t, pool))
				requireIdle(t, pool)
			})
			t.Run("retried from BEGIN on a serialization failure at COMMIT", func(t *testing.T) {
				truncate()
				calls := 0
				err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
					calls++
					if err := q.putLater(ctx, 1, "once"); err != nil {
						return err
					}
					_, err := q.db.Exec(ctx, failFirstSQL, uow.Attempt(ctx))
					return err
				}, uow.Retry(uow.DefaultRetry))
				require.NoError(t, err)
				require.Equal(t, 2, calls)
				require.Equal(t, []int{1}, ids(t, pool))
			})
			t.Run("a panic rolls back the queued writes", func(t *testing.T) {
				truncate()
				require.Panics(t, func() {
					_ = u.Do(t.Context(), func(ctx context.Context, q *store) error {
						_ = q.putLater(ctx, 1, "a")
						panic("fn panicked")
					})
				})
				require.Empty(t, ids(t, pool))
				requireIdle(t, pool)
			})
			t.Run("a handle used after its unit of work", func(t *testing.T) {
				var leaked *store
				require.NoError(t, u.Do(t.Context(), func(ctx context.Context, q *store) error { leaked = q; return nil }))
				require.ErrorIs(t, leaked.putLater(t.Context(), 9, "late"), uow.ErrTxDone)
			})
			t.Run("only :exec is deferred", func(t *testing.T) {
				truncate()
				err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 1, "plain"); err != nil { // hand-written: sent at once
						return err
					}
					tag, err := q.db.Exec(ctx, itemTouchSQL, 1) // :execrows: its count is read
					if err != nil {
						return err
					}
					require.EqualValues(t, 1, tag.RowsAffected())
					return nil
				})
				require.NoError(t, err)
			})
		})
	}
}

func TestWriteBehindQueueIsBounded(t *testing.T) {
	t.Parallel()
	pool, w := newDBWith(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec })
	u := uow.New(pool, newStore)
	w.reset()
	const n = 200
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		for i := range n {
			if err := q.putLater(ctx, i, "x"); err != nil {
				return err
			}
		}
		return nil
	}, uow.WriteBehind())
	require.NoError(t, err)
	// Three round trips of 64 statements, then the last 8 with COMMIT.
	require.Equal(t, 4, w.count())
	require.Len(t, ids(t, pool), n)
}

func TestWriteBehindCommitOutcome(t *testing.T) {
	t.Parallel()
	for _, c := range []cut{cutReplyLost, cutFatalAfterTag, cutAfterWrite} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			pool, _, in := newFaultDB(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec })
			u := uow.New(pool, newStore, uow.WithWriteBehind())
			calls := 0
			err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
				calls++
				if _, err := q.count(ctx); err != nil {
					return err
				}
				if err := q.putLater(ctx, 1, "rides with COMMIT"); err != nil {
					return err
				}
				in.arm(c)
				return nil
			}, uow.Retry(connLoss))
			require.Equal(t, 1, calls)
			if c == cutAfterWrite {
				require.ErrorIs(t, err, uow.ErrCommitUnknown, "nothing tells whether the batch ran")
				// The server got the batch; its session may still be running it.
				require.Eventually(t, func() bool { return len(ids(t, pool)) == 1 }, 10*time.Second, 5*time.Millisecond)
			} else {
				require.NoError(t, err, "the transaction id rode ahead of COMMIT")
			}
			require.Equal(t, []int{1}, ids(t, pool))
		})
	}
}
