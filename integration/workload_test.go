package integration

import (
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/erp"
	"github.com/cortexerp/datalayer/erp/demo"
	"github.com/cortexerp/datalayer/outbox"
)

func TestInvariantsAfterConcurrentWorkloads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		processes int // services sharing the database, each with its publishers
		opts      demo.Options
	}{
		{name: "the demo's workload", processes: 1, opts: demo.Options{Orders: 300, Workers: 8, Seed: 1}},
		{name: "many clients on few products", processes: 1, opts: demo.Options{Orders: 300, Workers: 12, Products: 6, Seed: 2}},
		{name: "two services sharing one database and outbox", processes: 2, opts: demo.Options{Orders: 150, Workers: 4, Seed: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := dbtest.New(t, dbtest.WithMaxConns(40), withOutbox)
			results := make([]demo.Result, tt.processes)
			errs := make([]error, tt.processes)
			var wg sync.WaitGroup
			for i := range tt.processes {
				svc, err := erp.New(pool)
				require.NoError(t, err)
				opts := tt.opts
				opts.Tag, opts.Seed = fmt.Sprintf("p%d", i), opts.Seed+uint64(i)
				wg.Go(func() { results[i], errs[i] = demo.Simulate(t.Context(), svc, opts) })
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			checkInvariants(t, pool, results)
		})
	}
}

// withOutbox migrates dbtest's template with the outbox's migrations after
// the application's, in the outbox's version table, as a service does.
var withOutbox = dbtest.WithMigrationSet(outbox.Migrations(), outbox.VersionTable)

// checkInvariants asserts what must hold after any workload, from the
// database's state and what the clients saw.
func checkInvariants(t *testing.T, pool *pgxpool.Pool, results []demo.Result) {
	t.Helper()
	ctx := t.Context()
	q := dbgen.New(pool)
	scalar := func(query string, args ...any) int64 {
		t.Helper()
		var n int64
		require.NoError(t, pool.QueryRow(ctx, query, args...).Scan(&n))
		return n
	}
	// balance is the ledger balance of an account and, next to it, the total
	// of the orders in a status, both as text.
	balance := func(account string, status erp.OrderStatus) (string, string) {
		t.Helper()
		var b, total string
		require.NoError(t, pool.QueryRow(ctx, `SELECT
			(SELECT COALESCE(sum(e.amount), 0) FROM journal_entries e JOIN ledger_accounts a ON a.id = e.account_id WHERE a.code = $1)::text,
			(SELECT COALESCE(sum(total), 0) FROM orders WHERE status = $2)::text`, account, status).Scan(&b, &total))
		return b, total
	}

	var placed, cancelled int
	initial := map[int64]int32{}
	delivered, processed := map[int64]int{}, map[int64]int{}
	lostMarks, redelivered := 0, 0
	for _, r := range results {
		o := r.Outcomes
		require.Equal(t, o.Requests, o.Placed+o.Replayed+o.OutOfStock, "every request has one outcome")
		require.Positive(t, o.Placed)
		require.Positive(t, o.OutOfStock, "the workload runs some products out of stock")
		require.Positive(t, o.CouponRefused, "the workload sends coupons that do not apply")
		placed, cancelled = placed+o.Placed, cancelled+o.Cancelled
		maps.Copy(initial, r.Catalog.Initial)
		for id, n := range r.Deliveries {
			delivered[id] += n
		}
		for id, n := range r.Processed {
			processed[id] += n
		}
		lostMarks += r.LostMarks
		require.Zero(t, r.OutOfOrder, "the subscriber processes each order's events in commit order")
	}
	for _, n := range delivered {
		redelivered += n - 1
	}

	t.Run("the ledger sums to zero and every journal balances", func(t *testing.T) {
		require.Zero(t, scalar("SELECT COALESCE(sum(amount), 0)::bigint FROM journal_entries"))
		unbalanced, err := q.LedgerUnbalancedJournals(ctx)
		require.NoError(t, err)
		require.Empty(t, unbalanced)
		receivable, pending := balance(erp.AccountReceivable, erp.OrderPending)
		require.Equal(t, pending, receivable, "receivables are the pending orders' totals")
		cash, paid := balance(erp.AccountCash, erp.OrderPaid)
		require.Equal(t, paid, cash, "cash is the paid orders' totals")
	})

	t.Run("stock is never negative and stock plus sold is the initial stock", func(t *testing.T) {
		require.Zero(t, scalar("SELECT count(*) FROM stock_levels WHERE on_hand < 0"))
		rows, err := pool.Query(ctx, `SELECT s.product_id, s.on_hand, COALESCE(sum(l.quantity) FILTER (WHERE o.status <> 'cancelled'), 0)
			FROM stock_levels s LEFT JOIN order_lines l ON l.product_id = s.product_id LEFT JOIN orders o ON o.id = l.order_id
			GROUP BY s.product_id`)
		require.NoError(t, err)
		seen := 0
		for rows.Next() {
			var id, onHand, sold int64
			require.NoError(t, rows.Scan(&id, &onHand, &sold))
			require.Equal(t, int64(initial[id]), onHand+sold, "product %d", id)
			seen++
		}
		require.NoError(t, rows.Err())
		require.Len(t, initial, seen)
	})

	t.Run("one order per idempotency key, each placed order written once", func(t *testing.T) {
		require.Zero(t, scalar("SELECT count(*) FROM (SELECT 1 FROM orders GROUP BY idempotency_key HAVING count(*) > 1) x"))
		require.Equal(t, int64(placed), scalar("SELECT count(*) FROM orders"))
		require.Equal(t, int64(placed), scalar("SELECT count(DISTINCT idempotency_key) FROM orders"))
		require.Equal(t, int64(cancelled), scalar("SELECT count(*) FROM orders WHERE status = 'cancelled'"))
	})

	t.Run("coupon redemptions match the orders that got the discount", func(t *testing.T) {
		require.Zero(t, scalar(`SELECT count(*) FROM coupons c
			WHERE c.redemptions <> (SELECT count(*) FROM orders o WHERE o.coupon_code = c.code) OR c.redemptions > c.max_redemptions`))
	})

	t.Run("every outbox event is delivered, and processed exactly once", func(t *testing.T) {
		events := scalar("SELECT count(*) FROM outbox_events")
		require.Equal(t, int64(placed+cancelled)+scalar("SELECT count(*) FROM orders WHERE paid_at IS NOT NULL"), events, "one event per placement, payment and cancellation")
		require.Equal(t, events, scalar("SELECT count(*) FROM outbox_events WHERE state = 'delivered'"))
		require.Len(t, delivered, int(events))
		require.Positive(t, lostMarks, "the workload loses marks on purpose")
		require.GreaterOrEqual(t, redelivered, lostMarks, "an event whose mark was lost is delivered again")
		require.Len(t, processed, int(events))
		for id, n := range processed {
			require.Equal(t, 1, n, "event %d", id)
		}
		require.Equal(t, events, scalar("SELECT count(*) FROM outbox_inbox"), "the inbox holds each event once")
	})
}
