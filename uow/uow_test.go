package uow_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

type unit = uow.UnitOfWork[*store]

var errBoom = errors.New("boom")

func TestSemantics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		run     func(ctx context.Context, u *unit) error
		wantErr error // nil: success; matched with errors.Is
		want    []int // ids in items afterwards
	}{
		{
			name: "outer commit keeps all writes",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 1, "a"); err != nil {
						return err
					}
					return u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, 2, "b") })
				})
			},
			want: []int{1, 2},
		},
		{
			name: "inner error rolls back only its savepoint and the outer call commits",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 1, "a"); err != nil {
						return err
					}
					err := u.Do(ctx, func(ctx context.Context, q *store) error {
						if err := q.put(ctx, 2, "b"); err != nil {
							return err
						}
						return q.broken(ctx)
					})
					if sqlState(err) != pgerrcode.NotNullViolation {
						return errors.New("inner call should fail with a not-null violation")
					}
					return q.put(ctx, 3, "c")
				})
			},
			want: []int{1, 3},
		},
		{
			name: "inner Go error returned by the outer call rolls back everything",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 1, "a"); err != nil {
						return err
					}
					return u.Do(ctx, func(ctx context.Context, q *store) error {
						if err := q.put(ctx, 2, "b"); err != nil {
							return err
						}
						return errBoom
					})
				})
			},
			wantErr: errBoom,
		},
		{
			name: "inner Go error swallowed by the outer call keeps the outer writes",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 1, "a"); err != nil {
						return err
					}
					_ = u.Do(ctx, func(ctx context.Context, q *store) error {
						if err := q.put(ctx, 2, "b"); err != nil {
							return err
						}
						return errBoom
					})
					return nil
				})
			},
			want: []int{1},
		},
		{
			name: "statement error swallowed inside fn makes the commit refuse",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 1, "a"); err != nil {
						return err
					}
					_ = q.broken(ctx)
					return nil
				})
			},
			wantErr: uow.ErrRollbackOnly,
		},
		{
			name: "statement error swallowed inside a nested fn makes the outer commit refuse",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 1, "a"); err != nil {
						return err
					}
					inner := u.Do(ctx, func(ctx context.Context, q *store) error {
						_ = q.broken(ctx)
						return nil
					})
					if !errors.Is(inner, uow.ErrRollbackOnly) {
						return errors.New("nested call should report ErrRollbackOnly")
					}
					return nil
				})
			},
			wantErr: uow.ErrRollbackOnly,
		},
		{
			name: "three levels deep: the middle failure drops the middle and the innermost",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 1, "depth 0"); err != nil {
						return err
					}
					_ = u.Do(ctx, func(ctx context.Context, q *store) error {
						if err := q.put(ctx, 2, "depth 1"); err != nil {
							return err
						}
						if err := u.Do(ctx, func(ctx context.Context, q *store) error {
							return q.put(ctx, 3, "depth 2")
						}); err != nil {
							return err
						}
						return errBoom
					})
					return u.Do(ctx, func(ctx context.Context, q *store) error {
						if err := q.put(ctx, 4, "depth 1 again"); err != nil {
							return err
						}
						return u.Do(ctx, func(ctx context.Context, q *store) error {
							return q.put(ctx, 5, "depth 2 again")
						})
					})
				})
			},
			want: []int{1, 4, 5},
		},
		{
			name: "outer error after inner success rolls back everything",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, 1, "a") }); err != nil {
						return err
					}
					return errBoom
				})
			},
			wantErr: errBoom,
		},
		{
			name: "an empty nested call changes nothing",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := u.Do(ctx, func(context.Context, *store) error { return nil }); err != nil {
						return err
					}
					return q.put(ctx, 1, "a")
				})
			},
			want: []int{1},
		},
		{
			name: "Durable on a nested call is refused",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					return u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, 1, "a") }, uow.Durable())
				}, uow.Durable())
			},
			wantErr: uow.ErrNotOutermost,
		},
		{
			name: "Isolation on a nested call is refused",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					return u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, 1, "a") }, uow.Isolation(pgx.Serializable))
				})
			},
			wantErr: uow.ErrNotOutermost,
		},
		{
			name: "Deferrable on a nested call is refused",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					return u.Do(ctx, func(ctx context.Context, q *store) error { return nil }, uow.Deferrable())
				})
			},
			wantErr: uow.ErrNotOutermost,
		},
		{
			name: "a read-only nested call lets the parent write again after it",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 1, "a"); err != nil {
						return err
					}
					err := u.Do(ctx, func(ctx context.Context, q *store) error {
						if _, err := q.count(ctx); err != nil {
							return err
						}
						return q.put(ctx, 2, "refused")
					}, uow.ReadOnly())
					if sqlState(err) != pgerrcode.ReadOnlySQLTransaction {
						return errors.New("the write in the read-only nested call should fail")
					}
					if err := u.Do(ctx, func(ctx context.Context, q *store) error {
						_, err := q.count(ctx)
						return err
					}, uow.ReadOnly()); err != nil {
						return err
					}
					return q.put(ctx, 3, "c")
				})
			},
			want: []int{1, 3},
		},
		{
			name: "a write in a read-only unit of work fails with a clear error",
			run: func(ctx context.Context, u *unit) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, 1, "a") }, uow.ReadOnly())
			},
			wantErr: &pgconn.PgError{Code: pgerrcode.ReadOnlySQLTransaction},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, _ := newDB(t)
			u := uow.New(pool, newStore)
			err := tt.run(t.Context(), u)
			switch want := tt.wantErr.(type) { //nolint:errorlint // the table holds plain values, not wrapped errors
			case nil:
				require.NoError(t, err)
			case *pgconn.PgError:
				require.Equal(t, want.Code, sqlState(err), "error: %v", err)
			default:
				require.ErrorIs(t, err, want)
			}
			require.Equal(t, tt.want, ids(t, pool))
			requireIdle(t, pool)
		})
	}
}

func sqlState(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	return ""
}

func TestReadOnlyErrorNamesTheOption(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error { return q.put(ctx, 1, "a") }, uow.ReadOnly())
	require.ErrorContains(t, err, "read-only unit of work")
	require.Empty(t, ids(t, pool))
}

func TestPanicRollsBackAndReturnsTheConnection(t *testing.T) {
	t.Parallel()
	for depth := range 3 {
		t.Run([]string{"outermost", "nested", "two levels deep"}[depth], func(t *testing.T) {
			t.Parallel()
			pool, _ := newDB(t)
			u := uow.New(pool, newStore)
			var nest func(ctx context.Context, d int) error
			nest = func(ctx context.Context, d int) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					if err := q.put(ctx, 10+d, "x"); err != nil {
						return err
					}
					if d == depth {
						panic("fn panicked")
					}
					return nest(ctx, d+1)
				})
			}
			require.PanicsWithValue(t, "fn panicked", func() { _ = nest(t.Context(), 0) })
			require.Empty(t, ids(t, pool))
			requireIdle(t, pool)
			require.NoError(t, u.Do(t.Context(), func(ctx context.Context, q *store) error { return q.put(ctx, 1, "after") }))
			require.Equal(t, []int{1}, ids(t, pool))
		})
	}
}

func TestCancelledContextRollsBackAndFreesTheConnection(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	ctx, cancel := context.WithCancel(t.Context())
	err := u.Do(ctx, func(ctx context.Context, q *store) error {
		if err := q.put(ctx, 1, "a"); err != nil {
			return err
		}
		go func() { // cancel once the server runs the statement
			defer cancel()
			for ctx.Err() == nil {
				var n int
				err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' AND state = 'active'").Scan(&n)
				if err == nil && n == 1 {
					return
				}
			}
		}()
		_, err := q.db.Exec(ctx, "SELECT pg_sleep(5)")
		return err
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, ids(t, pool))
	requireIdle(t, pool)
	for i := range 3 { // the next units of work see no busy connection
		require.NoError(t, u.Do(t.Context(), func(ctx context.Context, q *store) error { return q.put(ctx, 2+i, "next") }))
	}
	require.Equal(t, []int{2, 3, 4}, ids(t, pool))
}

func TestHandleUsedAfterDoFails(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	var leaked *store
	require.NoError(t, u.Do(t.Context(), func(ctx context.Context, q *store) error {
		leaked = q
		return q.put(ctx, 1, "a")
	}))
	require.ErrorIs(t, leaked.put(t.Context(), 2, "late"), uow.ErrTxDone)
	require.Equal(t, []int{1}, ids(t, pool))

	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		var inner *store
		if err := u.Do(ctx, func(ctx context.Context, q *store) error { inner = q; return q.put(ctx, 3, "c") }); err != nil {
			return err
		}
		return inner.put(ctx, 4, "after the nested call ended")
	})
	require.ErrorIs(t, err, uow.ErrTxDone)
	require.Equal(t, []int{1}, ids(t, pool))
}

func TestConcurrentUseIsRefused(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	var refused int
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		if err := q.put(ctx, 1, "a"); err != nil {
			return err
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for g := range 8 {
			wg.Go(func() {
				for i := range 20 {
					_, err := q.db.Exec(ctx, "SELECT pg_sleep(0.001)")
					if errors.Is(err, uow.ErrConcurrentUse) {
						mu.Lock()
						refused++
						mu.Unlock()
					} else if err != nil {
						t.Errorf("goroutine %d statement %d: %v", g, i, err)
					}
				}
			})
		}
		wg.Wait()
		return nil
	})
	require.NoError(t, err)
	require.Positive(t, refused, "some statements should have been refused")
	require.Equal(t, []int{1}, ids(t, pool))
	requireIdle(t, pool)
}

func TestOpenRowsBlockTheNextStatement(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		rows, err := q.db.Query(ctx, "SELECT id FROM accounts")
		if err != nil {
			return err
		}
		if err := q.put(ctx, 1, "while rows are open"); !errors.Is(err, uow.ErrConcurrentUse) {
			return errors.New("a statement while rows are open should be refused")
		}
		rows.Close()
		return q.put(ctx, 2, "after close")
	})
	require.NoError(t, err)
	require.Equal(t, []int{2}, ids(t, pool))

	err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
		if err := q.put(ctx, 3, "c"); err != nil {
			return err
		}
		_, err := q.db.Query(ctx, "SELECT id FROM accounts")
		return err // rows left open
	})
	require.ErrorContains(t, err, "still open")
	require.Equal(t, []int{2}, ids(t, pool))
	requireIdle(t, pool)
}

func TestTooManySavepoints(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore, uow.WithMaxSavepoints(3))
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		for i := range 5 {
			if err := u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, i, "x") }); err != nil {
				return err
			}
		}
		return nil
	})
	require.ErrorIs(t, err, uow.ErrTooManySavepoints)
	require.ErrorContains(t, err, "WithMaxSavepoints")
	require.Empty(t, ids(t, pool))
	requireIdle(t, pool)
}

func TestQueriesOutsideAUnitOfWorkUseThePool(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	require.NoError(t, u.Queries(t.Context()).put(t.Context(), 1, "autocommit"))
	require.NoError(t, u.Do(t.Context(), func(ctx context.Context, _ *store) error {
		return u.Queries(ctx).put(ctx, 2, "through Queries(ctx)")
	}))
	require.Equal(t, []int{1, 2}, ids(t, pool))
	require.Zero(t, uow.Attempt(t.Context()))
}

func TestNewRejectsBadInput(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, "uow.New: pool must not be nil", func() { uow.New(nil, newStore) })
	pool, _ := newDB(t)
	type wider interface {
		uow.DBTX
		Begin(context.Context) (pgx.Tx, error)
	}
	require.Panics(t, func() { uow.New(pool, func(wider) int { return 0 }) })
	require.Panics(t, func() { uow.New(pool, newStore, uow.WithMaxSavepoints(0)) })
}
