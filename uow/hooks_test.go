package uow_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

// journal records hook calls in order.
type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, s)
}

func (j *journal) commit(name string) func(context.Context) {
	return func(ctx context.Context) {
		if uow.Attempt(ctx) != 0 {
			panic("hook ctx must not carry a unit of work")
		}
		j.add("commit " + name)
	}
}

func (j *journal) rollback(name string) func(context.Context, error) {
	return func(_ context.Context, err error) { j.add("rollback " + name + ": " + err.Error()) }
}

func TestHooks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(ctx context.Context, u *unit, j *journal) error
		want []string
		ids  []int
	}{
		{
			name: "after-commit hooks run once after the outermost commit, in order",
			run: func(ctx context.Context, u *unit, j *journal) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					uow.AfterCommit(ctx, j.commit("outer"))
					if err := u.Do(ctx, func(ctx context.Context, q *store) error {
						uow.AfterCommit(ctx, j.commit("inner"))
						return q.put(ctx, 1, "a")
					}); err != nil {
						return err
					}
					j.add("fn returned")
					return nil
				})
			},
			want: []string{"fn returned", "commit outer", "commit inner"},
			ids:  []int{1},
		},
		{
			name: "hooks of a rolled-back savepoint are dropped and its rollback hooks run then",
			run: func(ctx context.Context, u *unit, j *journal) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					_ = u.Do(ctx, func(ctx context.Context, q *store) error {
						uow.AfterCommit(ctx, j.commit("inner"))
						uow.AfterRollback(ctx, j.rollback("inner"))
						if err := q.put(ctx, 1, "a"); err != nil {
							return err
						}
						return errBoom
					})
					j.add("after inner")
					uow.AfterCommit(ctx, j.commit("outer"))
					return q.put(ctx, 2, "b")
				})
			},
			want: []string{"rollback inner: boom", "after inner", "commit outer"},
			ids:  []int{2},
		},
		{
			name: "an outer rollback drops every after-commit hook and runs the rollback hooks",
			run: func(ctx context.Context, u *unit, j *journal) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					uow.AfterRollback(ctx, j.rollback("outer"))
					if err := u.Do(ctx, func(ctx context.Context, q *store) error {
						uow.AfterCommit(ctx, j.commit("inner"))
						uow.AfterRollback(ctx, j.rollback("inner"))
						return q.put(ctx, 1, "a")
					}); err != nil {
						return err
					}
					return errBoom
				})
			},
			want: []string{"rollback outer: boom", "rollback inner: boom"},
		},
		{
			name: "outside a unit of work AfterCommit runs at once",
			run: func(ctx context.Context, u *unit, j *journal) error {
				uow.AfterCommit(ctx, j.commit("now"))
				uow.AfterRollback(ctx, j.rollback("never"))
				return nil
			},
			want: []string{"commit now"},
		},
		{
			name: "an empty unit of work still runs its after-commit hooks",
			run: func(ctx context.Context, u *unit, j *journal) error {
				return u.Do(ctx, func(ctx context.Context, q *store) error {
					uow.AfterCommit(ctx, j.commit("empty"))
					return nil
				})
			},
			want: []string{"commit empty"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, _ := newDB(t)
			u := uow.New(pool, newStore)
			j := &journal{}
			err := tt.run(t.Context(), u, j)
			if err != nil && !errors.Is(err, errBoom) {
				require.NoError(t, err)
			}
			require.Equal(t, tt.want, j.calls)
			require.Equal(t, tt.ids, ids(t, pool))
			requireIdle(t, pool)
		})
	}
}

func TestAfterCommitNeverRunsForAFailedAttempt(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	j := &journal{}
	serializationFailure := func(ctx context.Context, q *store) error {
		// A 40001 raised by the server, on the first attempt only.
		_, err := q.db.Exec(ctx, "SELECT fail_first($1, '40001')", uow.Attempt(ctx))
		return err
	}
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		uow.AfterCommit(ctx, j.commit("attempt "+string(rune('0'+uow.Attempt(ctx)))))
		if err := q.put(ctx, uow.Attempt(ctx), "a"); err != nil {
			return err
		}
		return serializationFailure(ctx, q)
	}, uow.Retry(uow.DefaultRetry), uow.Isolation(pgx.Serializable))
	require.NoError(t, err)
	require.Equal(t, []string{"commit attempt 2"}, j.calls)
	require.Equal(t, []int{2}, ids(t, pool))
}
