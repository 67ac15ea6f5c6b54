package pgtypes_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/execmode"
	"github.com/cortexerp/datalayer/provider"
	"github.com/cortexerp/datalayer/uow"
)

// ticketMigrations has an enum (with a label that needs quoting in an array
// literal), a table using it and its array, and an enum in another schema.
var ticketMigrations = fstest.MapFS{
	"00001_tickets.sql": {Data: []byte(`-- +goose Up
CREATE TYPE status AS ENUM ('open', 'closed', 'on hold');
CREATE TABLE tickets (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status  status   NOT NULL,
    history status[] NOT NULL
);
CREATE SCHEMA ops;
CREATE TYPE ops.level AS ENUM ('low', 'high');
-- +goose Down
DROP SCHEMA ops CASCADE;
DROP TABLE tickets;
DROP TYPE status;
`)},
}

// TestEnumArraysNeedNoCode round-trips an enum and an enum array through
// sqlc-shaped queries inside uow.Do, on pools made by dbtest and by provider
// in each exec mode, with no registration code here.
func TestEnumArraysNeedNoCode(t *testing.T) {
	t.Parallel()
	pools := map[string]func(t *testing.T) *pgxpool.Pool{
		"dbtest.New": func(t *testing.T) *pgxpool.Pool {
			return dbtest.New(t, dbtest.WithMigrations(ticketMigrations))
		},
	}
	for _, mode := range execmode.Names() {
		pools["provider "+mode] = func(t *testing.T) *pgxpool.Pool {
			return providerPool(t, dbtest.NewURL(t, dbtest.WithMigrations(ticketMigrations)), mode)
		}
	}
	for name, open := range pools {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			u := uow.New(open(t), New)
			want := []Status{StatusOpen, StatusOnHold, StatusClosed}
			var got []Ticket
			err := u.Do(ctx, func(ctx context.Context, q *Queries) error {
				created, err := q.TicketCreate(ctx, TicketCreateParams{Status: StatusOnHold, History: want})
				if err != nil {
					return err
				}
				require.Equal(t, want, created.History)
				if _, err := q.TicketCreate(ctx, TicketCreateParams{Status: StatusClosed, History: []Status{}}); err != nil {
					return err
				}
				got, err = q.TicketListByStatus(ctx, []Status{StatusOnHold, StatusOpen})
				return err
			})
			require.NoError(t, err)
			require.Equal(t, []Ticket{{ID: 1, Status: StatusOnHold, History: want}}, got)

			// The other schema's enum, by its qualified name.
			var levels []string
			require.NoError(t, u.DB(ctx).QueryRow(ctx, `SELECT $1::ops.level[]`, []string{"high", "low"}).Scan(&levels))
			require.Equal(t, []string{"high", "low"}, levels)
		})
	}
}

// providerPool is the main pool of a provider on dbURL in exec mode mode.
func providerPool(t *testing.T, dbURL, mode string) *pgxpool.Pool {
	t.Helper()
	p, err := provider.New(t.Context(), provider.WithEnvironment(map[string]string{
		"DATABASE_URL":      dbURL,
		"DB_MAIN_EXEC_MODE": mode,
	}))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(context.WithoutCancel(t.Context()))) })
	return p.Main().Pool()
}

// TestTypeCreatedLaterNeedsReset: a connection knows the enums that existed
// when it opened; pool.Reset replaces the connections, and the new ones know
// the new type.
func TestTypeCreatedLaterNeedsReset(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := dbtest.New(t, dbtest.WithoutMigrations(), dbtest.WithMaxConns(1))
	_, err := pool.Exec(ctx, `CREATE TYPE mood AS ENUM ('calm', 'cross')`)
	require.NoError(t, err)
	moods := []Status{"calm", "cross"}

	var got []Status
	err = pool.QueryRow(ctx, `SELECT $1::mood[]`, moods).Scan(&got)
	require.ErrorContains(t, err, "unknown type")

	pool.Reset()
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::mood[]`, moods).Scan(&got))
	require.Equal(t, moods, got)
}
