//go:build migratelint

package lint

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
)

// sent is one statement goose sent to the database, and whether it was
// inside the transaction goose opened for the migration.
type sent struct {
	sql  string
	inTx bool
}

// recorder is a database/sql connector that runs nothing and keeps every
// statement goose sends, so that the linter sees the statements exactly as
// up (or down) would split and send them. Safe for concurrent use.
type recorder struct {
	mu   sync.Mutex
	sent []sent
}

// take returns the statements recorded since the last take.
func (r *recorder) take() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sent
	r.sent = nil
	return s
}

func (r *recorder) Connect(context.Context) (driver.Conn, error) { return &recConn{r: r}, nil }
func (r *recorder) Driver() driver.Driver                        { return recDriver{r} }

type recDriver struct{ r *recorder }

func (d recDriver) Open(string) (driver.Conn, error) { return &recConn{r: d.r}, nil }

// recConn is one connection of the recorder; inTx is set by BeginTx and
// cleared by the transaction's Commit or Rollback.
type recConn struct {
	r    *recorder
	inTx bool
}

var (
	_ driver.Connector     = (*recorder)(nil)
	_ driver.Conn          = (*recConn)(nil)
	_ driver.ConnBeginTx   = (*recConn)(nil)
	_ driver.ExecerContext = (*recConn)(nil)
	_ driver.Tx            = recTx{}
)

func (c *recConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("lint: the recording driver runs no prepared statements")
}
func (c *recConn) Close() error { return nil }
func (c *recConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *recConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	c.inTx = true
	return recTx{c}, nil
}

func (c *recConn) ExecContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Result, error) {
	c.r.mu.Lock()
	c.r.sent = append(c.r.sent, sent{sql: query, inTx: c.inTx})
	c.r.mu.Unlock()
	return driver.ResultNoRows, nil
}

type recTx struct{ c *recConn }

func (t recTx) Commit() error   { t.c.inTx = false; return nil }
func (t recTx) Rollback() error { t.c.inTx = false; return nil }
