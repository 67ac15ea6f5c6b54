// Package goosesplit splits a goose SQL migration into the statements goose
// sends, exactly as it sends them: goose's own Provider runs the file
// against a database/sql driver that records every statement and runs none.
// goose keeps its parser internal; this is how the kit reads a migration
// the way up (or down) will without a database.
package goosesplit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
)

// Statement is one statement goose sends for a migration.
type Statement struct {
	SQL  string // as goose sends it: the statement's lines, trimmed
	InTx bool   // inside the transaction goose opens (false under -- +goose NO TRANSACTION)
}

// File returns the statements of one SQL migration, file being its path in
// fsys (00012_invoices.sql), for Up when up is true, else for Down. The
// error is goose's when it cannot split the file (a missing StatementEnd,
// no -- +goose Up …). File is safe for concurrent use.
func File(ctx context.Context, fsys fs.FS, file string, up bool) ([]Statement, error) {
	if fsys == nil {
		return nil, errors.New("goosesplit: fsys must not be nil")
	}
	dir, name := path.Split(file)
	version, err := goose.NumericComponent(name)
	if err != nil {
		return nil, fmt.Errorf("goosesplit: %s: %w", file, err)
	}
	if dir != "" {
		if fsys, err = fs.Sub(fsys, path.Clean(dir)); err != nil {
			return nil, fmt.Errorf("goosesplit: %w", err)
		}
	}
	rec := &recorder{}
	db := sql.OpenDB(rec)
	db.SetMaxOpenConns(1)
	defer func() { _ = db.Close() }() // the recorder holds nothing
	p, err := goose.NewProvider(goose.DialectPostgres, db, onlyFile{fsys, name},
		goose.WithDisableGlobalRegistry(true),
		goose.WithDisableVersioning(true),
	)
	if err != nil {
		return nil, err
	}
	if _, err := p.ApplyVersion(ctx, version, up); err != nil {
		return nil, err
	}
	return rec.sent, nil
}

// SQLFiles lists the SQL migrations at the root of fsys in version order, as
// goose collects them, and the Go migrations beside them (which goose cannot
// run from files). The error is goose's: no migrations
// ([goose.ErrNoMigrations]), a version used twice.
func SQLFiles(fsys fs.FS) (sqlFiles, goFiles []string, err error) {
	if fsys == nil {
		return nil, nil, errors.New("goosesplit: fsys must not be nil")
	}
	if goFiles, err = fs.Glob(fsys, "*.go"); err != nil {
		return nil, nil, fmt.Errorf("goosesplit: %w", err)
	}
	db := sql.OpenDB(&recorder{})
	defer func() { _ = db.Close() }() // the recorder holds nothing
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithDisableVersioning(true),
		goose.WithExcludeNames(goFiles),
	)
	if err != nil {
		return nil, goFiles, err
	}
	for _, s := range p.ListSources() {
		sqlFiles = append(sqlFiles, strings.TrimPrefix(s.Path, "./"))
	}
	return sqlFiles, goFiles, nil
}

// onlyFile shows goose one file of fsys, so that no other file (a Go
// migration, a file that does not parse) is collected.
type onlyFile struct {
	fsys fs.FS
	name string
}

var (
	_ fs.ReadDirFS = onlyFile{}
	_ fs.GlobFS    = onlyFile{}
)

func (o onlyFile) Open(name string) (fs.File, error) {
	if name != "." && name != o.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return o.fsys.Open(name)
}

func (o onlyFile) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(o.fsys, name)
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return e.Name() != o.name }), err
}

func (o onlyFile) Glob(pattern string) ([]string, error) {
	names, err := fs.Glob(o.fsys, pattern)
	return slices.DeleteFunc(names, func(n string) bool { return n != o.name }), err
}

// recorder is a database/sql connector that runs nothing and keeps every
// statement it is sent. Safe for concurrent use.
type recorder struct {
	mu   sync.Mutex
	sent []Statement
}

func (r *recorder) Connect(context.Context) (driver.Conn, error) { return &conn{r: r}, nil }
func (r *recorder) Driver() driver.Driver                        { return recDriver{r} }

type recDriver struct{ r *recorder }

func (d recDriver) Open(string) (driver.Conn, error) { return &conn{r: d.r}, nil }

// conn is one connection of the recorder; inTx is set by BeginTx and
// cleared by the transaction's Commit or Rollback.
type conn struct {
	r    *recorder
	inTx bool
}

var (
	_ driver.Connector     = (*recorder)(nil)
	_ driver.Conn          = (*conn)(nil)
	_ driver.ConnBeginTx   = (*conn)(nil)
	_ driver.ExecerContext = (*conn)(nil)
	_ driver.Tx            = tx{}
)

func (c *conn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("goosesplit: the recording driver runs no prepared statements")
}
func (c *conn) Close() error              { return nil }
func (c *conn) Begin() (driver.Tx, error) { return c.BeginTx(context.Background(), driver.TxOptions{}) }

func (c *conn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	c.inTx = true
	return tx{c}, nil
}

func (c *conn) ExecContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Result, error) {
	c.r.mu.Lock()
	c.r.sent = append(c.r.sent, Statement{SQL: query, InTx: c.inTx})
	c.r.mu.Unlock()
	return driver.ResultNoRows, nil
}

type tx struct{ c *conn }

func (t tx) Commit() error   { t.c.inTx = false; return nil }
func (t tx) Rollback() error { t.c.inTx = false; return nil }
