package outbox_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

type work = *uow.UnitOfWork[uow.DBTX]

func bindDB(d uow.DBTX) uow.DBTX { return d }

// newDB returns a pool on a database of this test's own, migrated with the
// outbox's migrations, and a unit of work over it.
func newDB(t *testing.T, opts ...dbtest.Option) (*pgxpool.Pool, work) {
	t.Helper()
	pool := dbtest.New(t, append([]dbtest.Option{dbtest.WithMigrations(outbox.Migrations())}, opts...)...)
	return pool, uow.New(pool, bindDB)
}

// row is one outbox_events row as the tests read it.
type row struct {
	ID        int64
	Topic     string
	Key       string
	Payload   string
	State     string
	Attempts  int
	LastError *string
}

func rows(t *testing.T, pool *pgxpool.Pool) []row {
	t.Helper()
	rs, err := pool.Query(context.WithoutCancel(t.Context()),
		"SELECT id, topic, key, convert_from(payload, 'UTF8'), state, attempts, last_error FROM outbox_events ORDER BY id")
	require.NoError(t, err)
	out, err := pgx.CollectRows(rs, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, where string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.WithoutCancel(t.Context()),
		"SELECT count(*) FROM outbox_events WHERE "+where).Scan(&n))
	return n
}

// recorder is a sink that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	events []outbox.Event
	fail   func(e outbox.Event) error // nil: accept everything
}

func (r *recorder) Deliver(_ context.Context, e outbox.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(e); err != nil {
			return err
		}
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) got() []outbox.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]outbox.Event(nil), r.events...)
}
