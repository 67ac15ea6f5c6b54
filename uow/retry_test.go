package uow_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

// barrier lets n goroutines wait for each other once, bounded by a timeout.
type barrier struct {
	wg sync.WaitGroup
}

func newBarrier(n int) *barrier {
	b := &barrier{}
	b.wg.Add(n)
	return b
}

func (b *barrier) arrive() {
	b.wg.Done()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

func balances(t *testing.T, u *unit) (a, b int) {
	t.Helper()
	err := u.DB(t.Context()).QueryRow(t.Context(), "SELECT (SELECT balance FROM accounts WHERE id = 1), (SELECT balance FROM accounts WHERE id = 2)").Scan(&a, &b)
	require.NoError(t, err)
	return a, b
}

func TestRetryOnRealSerializationFailure(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	ready := newBarrier(2)
	var calls atomic.Int32
	// Each withdraws 150 from its own account if the two hold 150 together:
	// write skew that only SERIALIZABLE catches.
	withdraw := func(id int) error {
		return u.Do(t.Context(), func(ctx context.Context, q *store) error {
			calls.Add(1)
			var total int
			if err := q.db.QueryRow(ctx, "SELECT sum(balance) FROM accounts").Scan(&total); err != nil {
				return err
			}
			if uow.Attempt(ctx) == 1 {
				ready.arrive()
			}
			if total < 150 {
				return nil
			}
			_, err := q.db.Exec(ctx, "UPDATE accounts SET balance = balance - 150 WHERE id = $1", id)
			return err
		}, uow.Isolation(pgx.Serializable), uow.Retry(uow.DefaultRetry))
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { errs[i] = withdraw(i + 1) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	a, b := balances(t, u)
	require.Equal(t, 50, a+b, "exactly one withdrawal")
	// The loser replays at least once (twice if its replay still overlaps the
	// winner's commit); either way the data is right.
	require.GreaterOrEqual(t, calls.Load(), int32(3), "the loser ran again")
	requireIdle(t, pool)
}

func TestRetryOnRealDeadlock(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	ready := newBarrier(2)
	var calls, deadlocks atomic.Int32
	add := func(first, second, amount int) error {
		return u.Do(t.Context(), func(ctx context.Context, q *store) error {
			calls.Add(1)
			if _, err := q.db.Exec(ctx, "UPDATE accounts SET balance = balance + $2 WHERE id = $1", first, amount); err != nil {
				return err
			}
			if uow.Attempt(ctx) == 1 {
				ready.arrive()
			}
			_, err := q.db.Exec(ctx, "UPDATE accounts SET balance = balance + $2 WHERE id = $1", second, amount)
			if sqlState(err) == pgerrcode.DeadlockDetected {
				deadlocks.Add(1)
			}
			return err
		}, uow.Retry(uow.DefaultRetry))
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = add(1, 2, 10) })
	wg.Go(func() { errs[1] = add(2, 1, 1) })
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	a, b := balances(t, u)
	require.Equal(t, 111, a)
	require.Equal(t, 111, b)
	require.Positive(t, deadlocks.Load(), "a deadlock happened")
	// Each victim replays once more (under load a replay can meet the other
	// transaction again).
	require.Equal(t, 2+deadlocks.Load(), calls.Load())
}

func TestNestedCallsNeverRetryAlone(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	var outer, inner int
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		outer++
		if err := q.put(ctx, 10*uow.Attempt(ctx), "outer"); err != nil {
			return err
		}
		// The outer fn swallows the nested failure: the whole unit of work is
		// still replayed, because only the outermost call may retry.
		_ = u.Do(ctx, func(ctx context.Context, q *store) error {
			inner++
			_, err := q.db.Exec(ctx, "SELECT fail_first($1, '40001')", uow.Attempt(ctx))
			return err
		}, uow.Retry(uow.DefaultRetry))
		return nil
	}, uow.Retry(uow.DefaultRetry))
	require.NoError(t, err)
	require.Equal(t, 2, outer)
	require.Equal(t, 2, inner)
	require.Equal(t, []int{20}, ids(t, pool))
}

func TestRetryGivesUpAndSkipsOtherErrors(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	policy := uow.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	var attempts []int
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		attempts = append(attempts, uow.Attempt(ctx))
		_, err := q.db.Exec(ctx, "SELECT fail_first(1, '40P01')")
		return err
	}, uow.Retry(policy))
	require.Equal(t, pgerrcode.DeadlockDetected, sqlState(err))
	require.ErrorContains(t, err, "gave up after 3 attempts")
	require.Equal(t, []int{1, 2, 3}, attempts)

	require.NoError(t, u.Queries(t.Context()).put(t.Context(), 1, "first"))
	calls := 0
	err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
		calls++
		return q.put(ctx, 1, "duplicate")
	}, uow.Retry(policy))
	require.Equal(t, pgerrcode.UniqueViolation, sqlState(err))
	require.Equal(t, 1, calls, "a unique violation is not retried")

	added := policy
	added.Codes = []string{pgerrcode.UniqueViolation}
	calls = 0
	err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
		calls++
		return q.put(ctx, 1, "duplicate")
	}, uow.Retry(added))
	require.Error(t, err)
	require.Equal(t, 3, calls, "codes the policy adds are retried")
}

func TestRetryStopsAtTheContextDeadline(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	policy := uow.RetryPolicy{MaxAttempts: 1000, BaseDelay: 50 * time.Millisecond, MaxDelay: 100 * time.Millisecond}
	calls := 0
	err := u.Do(ctx, func(ctx context.Context, q *store) error {
		calls++
		_, err := q.db.Exec(ctx, "SELECT fail_first(1, '40001')")
		return err
	}, uow.Retry(policy))
	// The last attempt fails with 40001, or (on a loaded machine) runs into
	// the deadline itself.
	require.True(t, sqlState(err) == pgerrcode.SerializationFailure || errors.Is(err, context.DeadlineExceeded),
		"the last attempt's error: %v", err)
	require.GreaterOrEqual(t, calls, 2, "it did retry")
	require.Less(t, calls, 1000, "the deadline, not the attempts, ended it")
}

func TestDefaultRetryAppliesUnlessTheCallSaysOtherwise(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore, uow.WithDefaultRetry(uow.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond}))
	var attempts []int
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		attempts = append(attempts, uow.Attempt(ctx))
		_, err := q.db.Exec(ctx, "SELECT fail_first($1, '40001')", uow.Attempt(ctx))
		return err
	})
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, attempts, "the default policy retried")

	attempts = nil
	err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
		attempts = append(attempts, uow.Attempt(ctx))
		_, err := q.db.Exec(ctx, "SELECT fail_first(1, '40001')")
		return err
	}, uow.Retry(uow.RetryPolicy{MaxAttempts: 1}))
	require.Equal(t, pgerrcode.SerializationFailure, sqlState(err))
	require.Equal(t, []int{1}, attempts, "the call's own policy wins")

	require.Panics(t, func() { uow.New(pool, newStore, uow.WithDefaultRetry(uow.RetryPolicy{})) }, "MaxAttempts 0 is refused")
	require.ErrorContains(t, u.Do(t.Context(), func(context.Context, *store) error { return nil },
		uow.Retry(uow.RetryPolicy{MaxAttempts: 0})), "MaxAttempts must be at least 1")
}
