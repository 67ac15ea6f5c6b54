// Package integration holds end-to-end tests against a real PostgreSQL: the
// user's day as the README tells it, and the ERP's invariants after
// concurrent workloads.
package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/uow"
)

// invoicesMigration is the migration the user writes in the README.
const invoicesMigration = `-- +goose Up
CREATE TABLE invoices (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id  bigint         NOT NULL UNIQUE REFERENCES orders (id),
    amount    numeric(14, 2) NOT NULL CHECK (amount >= 0),
    issued_at timestamptz    NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE invoices;
`

// invoiceCreate is the query the user adds to db/queries/invoices.sql; until
// make generate turns it into q.InvoiceCreate, u.DB(ctx) runs it in the same
// transaction as the typed queries.
const invoiceCreate = `INSERT INTO invoices (order_id, amount) VALUES ($1, $2) RETURNING id`

func TestUsersDay(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.NewURL(t, dbtest.WithoutMigrations())

	// 1. A new migration next to the application's (a copy of db/migrations).
	dir := filepath.Join(t.TempDir(), "migrations")
	require.NoError(t, os.CopyFS(dir, os.DirFS("../db/migrations")))
	created := strings.TrimSpace(migrateCmd(t, url, "-dir", dir, "create", "invoices", "sql"))
	require.Contains(t, created, "00010_invoices.sql")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00010_invoices.sql"), []byte(invoicesMigration), 0o600))
	require.Contains(t, migrateCmd(t, url, "-dir", dir, "validate"), "valid")

	// 2. go run ./cmd/migrate up (here the built binary, reading -dir).
	up := migrateCmd(t, url, "-dir", dir, "up")
	require.Contains(t, up, "00010_invoices.sql")
	require.Contains(t, up, "database at version 10")

	// 3. Typed queries in one unit of work, an optional step in a savepoint.
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	u := uow.New(pool, dbgen.New)
	var committed int64
	err = u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
		customer, err := q.CustomerCreate(ctx, dbgen.CustomerCreateParams{Name: "Ada", Email: "ada@example.com"})
		if err != nil {
			return err
		}
		total := decimal.RequireFromString("12.00")
		order, err := q.OrderCreate(ctx, dbgen.OrderCreateParams{CustomerID: customer.ID, Subtotal: total, Tax: decimal.Zero, Total: total})
		if err != nil {
			return err
		}
		var invoiceID int64
		if err := u.DB(ctx).QueryRow(ctx, invoiceCreate, order.ID, order.Total).Scan(&invoiceID); err != nil {
			return err
		}
		// Nested: a second invoice for the order breaks the unique
		// constraint; only the savepoint rolls back.
		err = u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
			_, err := u.DB(ctx).Exec(ctx, invoiceCreate, order.ID, order.Total)
			return err
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.UniqueViolation {
			return errors.New("the second invoice should break the unique constraint, got: " + errString(err))
		}
		uow.AfterCommit(ctx, func(context.Context) { committed = invoiceID })
		return nil
	}, uow.Retry(uow.DefaultRetry))
	require.NoError(t, err)
	require.NotZero(t, committed, "the AfterCommit hook ran")

	var invoices int
	var amount string
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*), max(amount)::text FROM invoices").Scan(&invoices, &amount))
	require.Equal(t, 1, invoices)
	require.Equal(t, "12.00", amount)

	// 4. The migration rolls back as cleanly.
	require.Contains(t, migrateCmd(t, url, "-dir", dir, "down"), "database at version 9")
	var table *string
	require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass('invoices')::text").Scan(&table))
	require.Nil(t, table)
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
