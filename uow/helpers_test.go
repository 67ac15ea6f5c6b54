package uow_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/uow"
)

// store is a tiny hand-written query layer in the shape sqlc generates: the
// uow package knows no application, so its tests bring their own.
type store struct{ db uow.DBTX }

func newStore(db uow.DBTX) *store { return &store{db: db} }

func (s *store) put(ctx context.Context, id int, note string) error {
	_, err := s.db.Exec(ctx, "INSERT INTO items (id, note) VALUES ($1, $2)", id, note)
	return err
}

// broken violates the NOT NULL constraint: a statement error on the server.
func (s *store) broken(ctx context.Context) error {
	_, err := s.db.Exec(ctx, "INSERT INTO items (id, note) VALUES ($1, NULL)", -1)
	return err
}

func (s *store) count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n)
	return n, err
}

const schema = `
CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL);
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts VALUES (1, 100), (2, 100);
CREATE FUNCTION fail_first(attempt int, code text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF attempt = 1 THEN
        RAISE EXCEPTION 'injected failure' USING ERRCODE = code;
    END IF;
END $$;`

// wire counts round trips (a client write followed by a read) and injects
// faults on the connections of one pool.
type wire struct {
	mu        sync.Mutex
	trips     int
	waiting   map[*wireConn]bool
	failDials bool
}

type wireConn struct {
	net.Conn
	w *wire
}

func (w *wire) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	w.mu.Lock()
	fail := w.failDials
	w.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errDialRefused}
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &wireConn{Conn: c, w: w}, nil
}

var errDialRefused = &net.AddrError{Err: "dial refused by the test", Addr: "test"}

func (c *wireConn) Write(b []byte) (int, error) {
	c.w.mu.Lock()
	c.w.waiting[c] = true
	c.w.mu.Unlock()
	return c.Conn.Write(b)
}

// Read counts a round trip when server data arrives after a client write.
// (pgx may start a read before the write it answers, so the count is taken
// when the data arrives, not when the read starts.)
func (c *wireConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.w.mu.Lock()
		if c.w.waiting[c] {
			c.w.trips++
			c.w.waiting[c] = false
		}
		c.w.mu.Unlock()
	}
	return n, err
}

func (w *wire) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trips = 0
}

func (w *wire) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.trips
}

// newDB returns a pool on a fresh database holding the test schema, with its
// connections watched by a wire.
func newDB(t *testing.T) (*pgxpool.Pool, *wire) {
	t.Helper()
	return newDBWith(t, nil)
}

// newDBWith is newDB with a hook to adjust the pool's configuration.
func newDBWith(t testing.TB, adjust func(*pgxpool.Config)) (*pgxpool.Pool, *wire) {
	t.Helper()
	url := dbtest.NewURL(t, dbtest.WithoutMigrations())
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	w := &wire{waiting: map[*wireConn]bool{}}
	cfg.ConnConfig.DialFunc = w.dial
	cfg.MaxConns = 8
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	if adjust != nil {
		adjust(cfg)
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(t.Context(), schema)
	require.NoError(t, err)
	return pool, w
}

// ids returns the ids in items, read outside any unit of work.
func ids(t testing.TB, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, err := pool.Query(context.WithoutCancel(t.Context()), "SELECT id FROM items ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	var out []int
	for rows.Next() {
		var id int
		require.NoError(t, rows.Scan(&id))
		out = append(out, id)
	}
	require.NoError(t, rows.Err())
	return out
}

// requireIdle asserts that every connection went back to the pool (a broken
// one is destroyed in the background, hence the short wait).
func requireIdle(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	require.Eventually(t, func() bool { return pool.Stat().AcquiredConns() == 0 },
		2*time.Second, 5*time.Millisecond, "connections still acquired")
}
