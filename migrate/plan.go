package migrate

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
)

// Planned is one migration [Migrator.PlanUp] says Up would apply.
type Planned struct {
	// Version is the migration's number.
	Version int64
	// File is its file name ("" for a Go migration without one).
	File string
	// Go reports a Go migration: what it sends is known only when its code
	// runs, so Statements is empty.
	Go bool
	// Transaction reports that the migration runs in one transaction;
	// false for a -- +goose NO TRANSACTION file, whose statements each
	// commit on their own.
	Transaction bool
	// Statements are the SQL statements of its Up section, in the order Up
	// sends them (BEGIN and COMMIT not included).
	Statements []string
}

// Plan is what Up would do: [Migrator.PlanUp]'s answer.
type Plan struct {
	// Version is the database's version now (0 on a fresh database).
	Version int64
	// Migrations are the migrations Up would apply, in order.
	Migrations []Planned
}

// PlanUp returns the migrations Up would apply, in the order it would apply
// them, each with its SQL, and changes nothing: it reads the version and
// checksum tables (a fresh database has neither), takes no lock (a
// migration running meanwhile is not waited for), and parses the files
// with goose's own parser. It fails as Up would on a changed applied file
// ([ErrDrift], unless [WithAcceptDrift]) or an older migration never applied
// ([ErrMissing], unless [WithAllowMissing]).
func (m *Migrator) PlanUp(ctx context.Context) (Plan, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	plan, err := m.planUp(ctx)
	if err != nil {
		return Plan{}, m.wrap("up (dry run)", err)
	}
	return plan, nil
}

func (m *Migrator) planUp(ctx context.Context) (Plan, error) {
	applied, err := appliedSet(ctx, m.db, m.cfg.versionTable)
	if err != nil {
		return Plan{}, err
	}
	sumTable := m.cfg.versionTable + checksumSuffix
	recorded := map[int64]string{}
	var exists bool
	if err := m.db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", sumTable).Scan(&exists); err != nil {
		return Plan{}, fmt.Errorf("read checksums: %w", err)
	}
	if exists {
		if recorded, err = recordedSums(ctx, m.db, sumTable); err != nil {
			return Plan{}, err
		}
	}
	var current int64
	for v := range applied {
		current = max(current, v)
	}
	sources := m.p.ListSources()
	slices.SortFunc(sources, func(a, b *goose.Source) int { return cmp.Compare(a.Version, b.Version) })
	var (
		drifts  []Drift
		missing []string
		pending []*goose.Source
	)
	for _, s := range sources {
		switch {
		case applied[s.Version]:
			if sum, was := fileSum(m.fsys, s), recorded[s.Version]; sum != "" && was != "" && sum != was {
				drifts = append(drifts, Drift{File: sourceLabel(s), Recorded: was, Current: sum})
			}
		case s.Version < current:
			missing = append(missing, sourceLabel(s))
			pending = append(pending, s)
		default:
			pending = append(pending, s)
		}
	}
	if len(drifts) > 0 && !m.cfg.acceptDrift {
		return Plan{}, &DriftError{Drifts: drifts}
	}
	if len(missing) > 0 && !m.cfg.allowMissing {
		return Plan{}, &missingError{files: missing, current: current}
	}
	plan := Plan{Version: current, Migrations: make([]Planned, 0, len(pending))}
	for _, s := range pending {
		p := Planned{Version: s.Version, File: baseName(s.Path), Go: s.Type == goose.TypeGo}
		if !p.Go {
			if p.Statements, p.Transaction, err = sqlStatements(ctx, m.fsys, s.Path, s.Version); err != nil {
				return Plan{}, fmt.Errorf("%s: %w", p.File, parseCause(err, s.Path))
			}
		}
		plan.Migrations = append(plan.Migrations, p)
	}
	return plan, nil
}

// sqlStatements returns the Up statements of one SQL migration, as goose
// would send them, and whether it runs them in a transaction: goose runs
// the file against a driver that records instead of executing.
func sqlStatements(ctx context.Context, fsys fs.FS, file string, version int64) ([]string, bool, error) {
	rec := &recorder{}
	db := sql.OpenDB(recordingConnector{rec})
	defer func() { _ = db.Close() }() // a recorder: nothing to release
	sub, err := fs.Sub(fsys, pathDir(file))
	if err != nil {
		return nil, false, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, onlyFile{sub, baseName(file)},
		goose.WithDisableGlobalRegistry(true),
		goose.WithDisableVersioning(true),
	)
	if err != nil {
		return nil, false, err
	}
	if _, err := p.ApplyVersion(ctx, version, true); err != nil {
		return nil, false, err
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.statements, rec.began, nil
}

func pathDir(file string) string {
	if i := strings.LastIndex(file, "/"); i >= 0 {
		return file[:i]
	}
	return "."
}

// onlyFile is fsys showing one migration file, so that goose parses no
// other (a Go file it could not run, a file that does not parse).
type onlyFile struct {
	fs.FS
	name string
}

func (o onlyFile) Open(name string) (fs.File, error) {
	if name != "." && name != o.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return o.FS.Open(name)
}

func (o onlyFile) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(o.FS, name)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return e.Name() != o.name }), nil
}

func (o onlyFile) Glob(pattern string) ([]string, error) {
	names, err := fs.Glob(o.FS, pattern)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(n string) bool { return n != o.name }), nil
}

// recorder keeps what a recordingConnector was asked to run.
type recorder struct {
	mu         sync.Mutex
	statements []string
	began      bool
}

// recordingConnector is a database/sql driver that records every statement
// and runs none.
type recordingConnector struct{ rec *recorder }

type recordingConn struct{ rec *recorder }

var (
	_ driver.Connector     = recordingConnector{}
	_ driver.ExecerContext = recordingConn{}
	_ driver.ConnBeginTx   = recordingConn{}
	_ driver.Tx            = recordingConn{}
)

func (c recordingConnector) Connect(context.Context) (driver.Conn, error) {
	return recordingConn(c), nil
}
func (c recordingConnector) Driver() driver.Driver { return recordingDriver(c) }

type recordingDriver struct{ rec *recorder }

func (d recordingDriver) Open(string) (driver.Conn, error) { return recordingConn(d), nil }

func (c recordingConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("recording driver: prepare not supported")
}
func (c recordingConn) Close() error { return nil }
func (c recordingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}
func (c recordingConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	c.rec.mu.Lock()
	c.rec.began = true
	c.rec.mu.Unlock()
	return c, nil
}
func (c recordingConn) Commit() error   { return nil }
func (c recordingConn) Rollback() error { return nil }
func (c recordingConn) ExecContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Result, error) {
	c.rec.mu.Lock()
	c.rec.statements = append(c.rec.statements, query)
	c.rec.mu.Unlock()
	return driver.ResultNoRows, nil
}
