package uow_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	started := time.Now()
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		_, err := q.db.Exec(ctx, "SELECT pg_sleep(3)")
		return err
	}, uow.StatementTimeout(100*time.Millisecond))
	require.Equal(t, pgerrcode.QueryCanceled, sqlState(err), "error: %v", err)
	require.Less(t, time.Since(started), 3*time.Second)

	// A nested call's timeout ends with it: the parent's statements are not bound by it.
	err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
		err := u.Do(ctx, func(ctx context.Context, q *store) error {
			_, err := q.db.Exec(ctx, "SELECT pg_sleep(1)")
			return err
		}, uow.StatementTimeout(50*time.Millisecond))
		if sqlState(err) != pgerrcode.QueryCanceled {
			return err
		}
		if err := u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, 1, "a") }, uow.StatementTimeout(10*time.Second)); err != nil {
			return err
		}
		_, err = q.db.Exec(ctx, "SELECT pg_sleep(0.3)")
		return err
	})
	require.NoError(t, err)
	require.Equal(t, []int{1}, ids(t, pool))
}

func TestLockTimeout(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	holder, err := pool.Begin(t.Context())
	require.NoError(t, err)
	_, err = holder.Exec(t.Context(), "SELECT * FROM accounts WHERE id = 1 FOR UPDATE")
	require.NoError(t, err)

	started := time.Now()
	err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
		_, err := q.db.Exec(ctx, "UPDATE accounts SET balance = 0 WHERE id = 1")
		return err
	}, uow.LockTimeout(100*time.Millisecond))
	require.Equal(t, pgerrcode.LockNotAvailable, sqlState(err), "error: %v", err)
	require.Less(t, time.Since(started), 3*time.Second)
	require.NoError(t, holder.Rollback(t.Context()))
	requireIdle(t, pool)
}

func TestContextDeadlineStopsTheServerToo(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := u.Do(ctx, func(ctx context.Context, q *store) error {
		_, err := q.db.Exec(ctx, "SELECT pg_sleep(30) /* deadline test */")
		return err
	})
	require.Error(t, err)
	// The server stopped the statement itself (statement_timeout from the
	// deadline): no backend is still sleeping.
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE '%deadline test%' AND pid <> pg_backend_pid()`).Scan(&n)
		return err == nil && n == 0
	}, 2*time.Second, 20*time.Millisecond)
	requireIdle(t, pool)
}

func TestAStatementDeadlineBoundsOnlyThatStatement(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	var setting string
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		short, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := q.put(short, 1, "first statement, its own deadline"); err != nil {
			return err
		}
		return q.db.QueryRow(ctx, "SHOW statement_timeout").Scan(&setting)
	})
	require.NoError(t, err)
	require.Equal(t, "0", setting, "the first statement's deadline must not bound the transaction")
	require.Equal(t, []int{1}, ids(t, pool))
}
