package erp_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/db"
	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/erp"
	"github.com/cortexerp/datalayer/outbox"
)

// fixture is a service on a fresh database with one customer.
type fixture struct {
	svc      *erp.Service
	pool     *pgxpool.Pool
	q        *dbgen.Queries // outside any unit of work: for assertions
	customer int64
}

func setup(t *testing.T) fixture {
	t.Helper()
	// One template with the application's and the outbox's migrations, each
	// set in its version table as a service migrates them: every test clones
	// it (outbox.MigrateDB per test doubled the package's test time).
	pool := dbtest.New(t, dbtest.WithMigrations(db.Migrations),
		dbtest.WithMigrationSet(outbox.Migrations(), outbox.VersionTable), dbtest.WithMaxConns(12))
	svc, err := erp.New(pool)
	require.NoError(t, err)
	c, err := svc.CreateCustomer(t.Context(), erp.NewCustomer{Name: "Ada", Email: "ada@example.com"})
	require.NoError(t, err)
	return fixture{svc: svc, pool: pool, q: dbgen.New(pool), customer: c.ID}
}

// products imports products priced and taxed as given, each with onHand in
// stock, and returns their IDs.
func (f fixture) products(t *testing.T, onHand int32, priceAndTax ...string) []int64 {
	t.Helper()
	var ps []erp.NewProduct
	for i := 0; i < len(priceAndTax); i += 2 {
		ps = append(ps, erp.NewProduct{
			SKU:       fmt.Sprintf("SKU-%d", i/2),
			Name:      fmt.Sprintf("Product %d", i/2),
			UnitPrice: decimal.RequireFromString(priceAndTax[i]),
			TaxRate:   decimal.RequireFromString(priceAndTax[i+1]),
			OnHand:    onHand,
		})
	}
	ids, err := f.svc.ImportProducts(t.Context(), ps)
	require.NoError(t, err)
	return ids
}

func (f fixture) coupon(t *testing.T, code string, percentOff int64, maxRedemptions int32, expiresAt time.Time) {
	t.Helper()
	require.NoError(t, f.svc.CreateCoupon(t.Context(), erp.NewCoupon{
		Code: code, PercentOff: decimal.NewFromInt(percentOff), MaxRedemptions: maxRedemptions, ExpiresAt: expiresAt,
	}))
}

func (f fixture) onHand(t *testing.T, productID int64) int32 {
	t.Helper()
	s, err := f.q.StockGet(t.Context(), productID)
	require.NoError(t, err)
	return s.OnHand
}

// count runs a SELECT count(*) … query.
func (f fixture) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.pool.QueryRow(t.Context(), query, args...).Scan(&n))
	return n
}

// balances returns the ledger balance of every account, by code.
func (f fixture) balances(t *testing.T) map[string]string {
	t.Helper()
	tb, err := f.svc.TrialBalance(t.Context())
	require.NoError(t, err)
	m := make(map[string]string, len(tb.Accounts))
	for _, a := range tb.Accounts {
		m[a.Code] = a.Balance.StringFixed(2)
	}
	return m
}

// order is an OrderRequest of the fixture's customer.
func (f fixture) order(items ...erp.Item) erp.OrderRequest {
	return erp.OrderRequest{CustomerID: f.customer, Items: items}
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }
