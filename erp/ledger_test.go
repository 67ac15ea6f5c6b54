package erp_test

import (
	"time"

	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/erp"
)

func TestTrialBalanceSumsToZero(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 100, "9.99", "0.20", "0.10", "0.05", "1234.56", "0.055")
	f.coupon(t, "QUARTER", 25, 100, time.Time{})
	ctx := t.Context()

	for i := range 12 {
		req := f.order(erp.Item{ProductID: ids[i%3], Quantity: int32(i + 1)}, erp.Item{ProductID: ids[(i+1)%3], Quantity: 1})
		if i%2 == 0 {
			req.CouponCode = "QUARTER"
		}
		o, err := f.svc.PlaceOrder(ctx, req)
		require.NoError(t, err)
		switch i % 3 {
		case 1:
			_, err = f.svc.PayOrder(ctx, o.ID)
		case 2:
			_, err = f.svc.CancelOrder(ctx, o.ID)
		}
		require.NoError(t, err)
	}

	tb, err := f.svc.TrialBalance(ctx)
	require.NoError(t, err)
	require.Len(t, tb.Accounts, 4)
	require.True(t, tb.Total.IsZero(), "total %s", tb.Total)
	unbalanced, err := f.q.LedgerUnbalancedJournals(ctx)
	require.NoError(t, err)
	require.Empty(t, unbalanced)

	var receivable, pending string
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT
		(SELECT sum(amount) FROM journal_entries JOIN ledger_accounts a ON a.id = account_id WHERE a.code = '1100')::text,
		(SELECT sum(total) FROM orders WHERE status = 'pending')::text`).Scan(&receivable, &pending))
	require.Equal(t, pending, receivable, "receivables are the pending orders' totals")
}
