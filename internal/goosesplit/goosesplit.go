// Package goosesplit splits a goose SQL migration into the statements goose
// sends, exactly as it sends them: goose's own Provider runs the file
// against a database/sql driver that records every statement and runs none.
// goose keeps its parser internal; this is how the kit reads a migration
// the way up (or down) will without a database. It is the kit's one such
// driver: migrate's dry run (PlanUp) and Validate and migrate/lint use it.
package goosesplit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"testing/fstest"

	"github.com/pressly/goose/v3"
)

// Statement is one statement goose sends for a migration.
type Statement struct {
	SQL  string // as goose sends it: the statement's lines, trimmed
	InTx bool   // inside the transaction goose opens (false under -- +goose NO TRANSACTION)
}

// Migration is one direction (Up or Down) of a SQL migration as goose runs it.
type Migration struct {
	// Statements are what goose sends, in order (BEGIN and COMMIT not included).
	Statements []Statement
	// Tx reports that goose opens a transaction for it: false under
	// -- +goose NO TRANSACTION.
	Tx bool
	// EnvSub reports a file with a -- +goose ENVSUB ON line: goose fills its
	// ${VAR} from the process environment. Under [AsWritten] the statements
	// keep them as written.
	EnvSub bool
}

// Env says what [Split] does with a file's -- +goose ENVSUB ON sections.
type Env int

const (
	// Substitute fills ${VAR} from the process environment, as goose does
	// when it migrates.
	Substitute Env = iota
	// AsWritten leaves ${VAR} as written: for output a person reads (a dry
	// run), where a value from the environment (a password) must not show.
	AsWritten
)

// File returns the statements of one SQL migration, file being its path in
// fsys (00012_invoices.sql), for Up when up is true, else for Down, with
// ENVSUB sections substituted as goose does ([Split] with [Substitute]).
func File(ctx context.Context, fsys fs.FS, file string, up bool) ([]Statement, error) {
	m, err := Split(ctx, fsys, file, up, Substitute)
	return m.Statements, err
}

// Split returns one direction of one SQL migration as goose runs it, file
// being its path in fsys (00012_invoices.sql), for Up when up is true, else
// for Down. The error is goose's when it cannot split the file (a missing
// StatementEnd, no -- +goose Up …, a ${VAR:?} whose variable is unset under
// [Substitute]). Split is safe for concurrent use.
func Split(ctx context.Context, fsys fs.FS, file string, up bool, env Env) (Migration, error) {
	if fsys == nil {
		return Migration{}, errors.New("goosesplit: fsys must not be nil")
	}
	dir, name := path.Split(file)
	version, err := goose.NumericComponent(name)
	if err != nil {
		return Migration{}, fmt.Errorf("goosesplit: %s: %w", file, err)
	}
	if dir != "" {
		if fsys, err = fs.Sub(fsys, path.Clean(dir)); err != nil {
			return Migration{}, fmt.Errorf("goosesplit: %w", err)
		}
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return Migration{}, fmt.Errorf("goosesplit: %w", err)
	}
	written, envsub := withoutEnvSub(data)
	shown := fstest.MapFS{name: {Data: data}}
	if env == AsWritten {
		shown[name].Data = written
	}
	rec := &recorder{}
	db := sql.OpenDB(rec)
	db.SetMaxOpenConns(1)
	defer func() { _ = db.Close() }() // the recorder holds nothing
	p, err := goose.NewProvider(goose.DialectPostgres, db, shown,
		goose.WithDisableGlobalRegistry(true),
		goose.WithDisableVersioning(true),
	)
	if err != nil {
		return Migration{}, err
	}
	if _, err := p.ApplyVersion(ctx, version, up); err != nil {
		return Migration{}, err
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return Migration{Statements: rec.sent, Tx: rec.began, EnvSub: envsub}, nil
}

// withoutEnvSub returns data without the lines goose reads as
// -- +goose ENVSUB ON, and whether there was one. The test is goose's own
// (its parser's extractAnnotation): a line whose trimmed text starts with
// "--" and that holds "+goose", without leading white space, which with
// every "--" and the first "+goose" removed reads ENVSUB ON in any case.
func withoutEnvSub(data []byte) ([]byte, bool) {
	lines := strings.SplitAfter(string(data), "\n")
	kept := lines[:0]
	for _, line := range lines {
		text := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r") // as bufio.ScanLines
		if strings.HasPrefix(strings.TrimSpace(text), "--") && strings.Contains(text, "+goose") &&
			!strings.HasPrefix(text, " ") && !strings.HasPrefix(text, "\t") {
			cmd := strings.Replace(strings.ReplaceAll(text, "--", ""), "+goose", "", 1)
			if strings.EqualFold(strings.TrimSpace(cmd), "ENVSUB ON") && !strings.Contains(cmd, "+goose") {
				continue
			}
		}
		kept = append(kept, line)
	}
	if len(kept) == len(lines) {
		return data, false
	}
	return []byte(strings.Join(kept, "")), true
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

// recorder is a database/sql connector that runs nothing and keeps every
// statement it is sent. Safe for concurrent use.
type recorder struct {
	mu    sync.Mutex
	sent  []Statement
	began bool // a transaction was opened
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
	c.r.mu.Lock()
	c.r.began = true
	c.r.mu.Unlock()
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

// Cause drops goose's "failed to prepare migration …: failed to parse
// <file>: " wrappers from an error of Split or File, whose news the caller
// gives already (it names the file).
func Cause(err error, file string) error {
	for {
		msg := err.Error()
		next := errors.Unwrap(err)
		if next == nil || !strings.HasPrefix(msg, "failed to prepare migration") && !strings.HasPrefix(msg, "failed to parse "+file+":") {
			return err
		}
		err = next
	}
}
