package uow_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

func TestEveryBadTxOptionIsReported(t *testing.T) {
	t.Parallel()
	pool, w := newDB(t)
	u := uow.New(pool, newStore)
	w.reset()
	ran := false
	err := u.Do(t.Context(), func(context.Context, *store) error { ran = true; return nil },
		uow.Retry(uow.RetryPolicy{}), uow.StatementTimeout(-1), nil, uow.LockTimeout(0))
	require.EqualError(t, err, "uow: Retry: MaxAttempts must be at least 1, got 0\n"+
		"uow: StatementTimeout: must be positive, got -1ns\n"+
		"uow: TxOption 2 is nil\n"+
		"uow: LockTimeout: must be positive, got 0s")
	require.False(t, ran)
	require.Zero(t, w.count(), "nothing was sent")
	require.PanicsWithValue(t, "uow.New: option 0 is nil", func() { uow.New(pool, newStore, nil) })
}
