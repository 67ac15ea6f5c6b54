// Package migrate runs goose SQL migrations from any fs.FS against
// PostgreSQL: up, down, status and the rest, one migrator at a time (an
// advisory session lock, or a table lock behind PgBouncer), with lock_timeout
// on every migration session so DDL waiting for a lock cannot stall live
// traffic. Each SQL file runs in its own transaction (unless it says
// -- +goose NO TRANSACTION), so a failing migration leaves the schema at the
// last good version.
//
// It wraps goose's Provider and never touches goose's global state.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"

	"github.com/pressly/goose/v3"
)

// Migrator applies and rolls back the migrations of one fs.FS on one
// database. It is safe for concurrent use: operations run one at a time,
// and across processes they are serialized by the migration lock.
type Migrator struct {
	p      *goose.Provider
	db     *sql.DB
	ownDB  bool
	fsys   fs.FS
	cfg    config
	tracer *stmtTracer // nil unless the Migrator opened db itself
	hooks  *sessionHooks
	// preflight takes and releases the migration lock, running the hooks.
	preflight func(ctx context.Context) error

	mu        sync.Mutex // one operation at a time; guards baselined
	baselined []string
}

// New returns a Migrator for the migrations at the root of fsys
// (00001_name.sql …) on db. The caller keeps ownership of db: Close does not
// close it. New sets nothing on db's connections, so lock_timeout is whatever
// its sessions have (see WithLockTimeout); Open sets it for you.
func New(db *sql.DB, fsys fs.FS, opts ...Option) (*Migrator, error) {
	if db == nil {
		return nil, errors.New("new migrator: db must not be nil")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("new migrator: %w", err)
	}
	return newMigrator(db, fsys, cfg, false, nil)
}

func newMigrator(db *sql.DB, fsys fs.FS, cfg config, own bool, tr *stmtTracer) (*Migrator, error) {
	if fsys == nil {
		return nil, errors.New("new migrator: fsys must not be nil")
	}
	gopts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithTableName(cfg.versionTable),
	}
	if len(cfg.goMigrations) > 0 {
		gopts = append(gopts, goose.WithGoMigrations(cfg.goMigrations...))
	}
	if cfg.logger != nil {
		gopts = append(gopts, goose.WithSlog(cfg.logger), goose.WithVerbose(true))
	}
	if cfg.allowMissing {
		gopts = append(gopts, goose.WithAllowOutofOrder(true))
	}
	hooks := &sessionHooks{}
	var preflight func(ctx context.Context) error
	if cfg.tableLock {
		l := &tableLocker{wait: cfg.lockWait, logger: orDiscard(cfg.logger), hooks: hooks}
		gopts = append(gopts, goose.WithLocker(l))
		preflight = func(ctx context.Context) error {
			if err := l.Lock(ctx, db); err != nil {
				return err
			}
			return l.Unlock(context.WithoutCancel(ctx), db)
		}
	} else {
		l := &sessionLocker{wait: cfg.lockWait, hooks: hooks}
		gopts = append(gopts, goose.WithSessionLocker(l))
		preflight = func(ctx context.Context) error {
			conn, err := db.Conn(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }() // back to the pool; the lock is released below
			if err := l.SessionLock(ctx, conn); err != nil {
				return err
			}
			return l.SessionUnlock(context.WithoutCancel(ctx), conn)
		}
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, gopts...)
	if err != nil {
		if errors.Is(err, goose.ErrNoMigrations) {
			return nil, errors.New("new migrator: no migration files (00001_name.sql …) at the root of the migrations directory")
		}
		return nil, fmt.Errorf("new migrator: %w", err)
	}
	return &Migrator{p: p, db: db, ownDB: own, fsys: fsys, cfg: cfg, tracer: tr, hooks: hooks, preflight: preflight}, nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// Close closes the database handle if Open made it; after New it does nothing.
func (m *Migrator) Close() error {
	if !m.ownDB {
		return nil
	}
	if err := m.db.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// Checksums: inside the migration lock, every operation below records in
// ChecksumTable the SHA-256 of each applied migration file and drops the rows
// of those rolled back. Up, UpByOne, UpTo and Redo first compare the applied
// files with their recorded checksums and refuse to run when one changed
// ([ErrDrift]; see [WithAcceptDrift]) or when an older migration was never
// applied ([ErrMissing]; see [WithAllowMissing]). Migrations applied before
// checksums were kept are recorded as they are now: see [Migrator.Baselined].

// Up applies every pending migration, in order. It returns the migrations
// applied; with an error, those applied before the failing one.
func (m *Migrator) Up(ctx context.Context) ([]Result, error) {
	return m.locked(ctx, "up", true, func() ([]Result, error) {
		rs, err := m.p.Up(ctx)
		return m.results("up", rs, err)
	})
}

// UpByOne applies the next pending migration. Nothing pending: no result, no error.
func (m *Migrator) UpByOne(ctx context.Context) ([]Result, error) {
	return m.locked(ctx, "up-by-one", true, func() ([]Result, error) {
		r, err := m.p.UpByOne(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			return nil, nil
		}
		return m.results("up-by-one", single(r), err)
	})
}

// UpTo applies pending migrations up to and including version.
func (m *Migrator) UpTo(ctx context.Context, version int64) ([]Result, error) {
	if version < 1 {
		return nil, fmt.Errorf("migrate up-to: version %d must be at least 1", version)
	}
	return m.locked(ctx, fmt.Sprintf("up-to %d", version), true, func() ([]Result, error) {
		rs, err := m.p.UpTo(ctx, version)
		return m.results(fmt.Sprintf("up-to %d", version), rs, err)
	})
}

// Down rolls back the latest applied migration. Nothing applied: no result, no error.
func (m *Migrator) Down(ctx context.Context) ([]Result, error) {
	return m.locked(ctx, "down", false, func() ([]Result, error) { return m.down(ctx, "down") })
}

func (m *Migrator) down(ctx context.Context, op string) ([]Result, error) {
	r, err := m.p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return nil, nil
	}
	return m.results(op, single(r), err)
}

// DownTo rolls back applied migrations newer than version (0: all of them).
func (m *Migrator) DownTo(ctx context.Context, version int64) ([]Result, error) {
	if version < 0 {
		return nil, fmt.Errorf("migrate down-to: version %d must not be negative", version)
	}
	return m.locked(ctx, fmt.Sprintf("down-to %d", version), false, func() ([]Result, error) {
		rs, err := m.p.DownTo(ctx, version)
		return m.results(fmt.Sprintf("down-to %d", version), rs, err)
	})
}

// Redo rolls back the latest applied migration and applies it again. The two
// steps take the migration lock separately.
func (m *Migrator) Redo(ctx context.Context) ([]Result, error) {
	return m.locked(ctx, "redo", true, func() ([]Result, error) {
		down, err := m.down(ctx, "redo")
		if err != nil || len(down) == 0 {
			return down, err
		}
		r, err := m.p.ApplyVersion(ctx, down[0].Version, true)
		rs, err := m.results("redo", single(r), err)
		return append(down, rs...), err
	})
}

// Reset rolls back every applied migration.
func (m *Migrator) Reset(ctx context.Context) ([]Result, error) {
	return m.locked(ctx, "reset", false, func() ([]Result, error) {
		rs, err := m.p.DownTo(ctx, 0)
		return m.results("reset", rs, err)
	})
}

// locked runs one operation with the checksum hooks armed (check: refuse
// drift and missing migrations first). goose's Up and UpByOne look for
// pending migrations without the lock and return early when there are none
// (or fail on missing ones), so with check the hooks first run once in a
// lock of their own; they run again in the operation's locked session.
func (m *Migrator) locked(ctx context.Context, op string, check bool, fn func() ([]Result, error)) ([]Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	run := &checksumRun{
		sources: m.p.ListSources(), fsys: m.fsys, check: check,
		acceptDrift: m.cfg.acceptDrift, allowMissing: m.cfg.allowMissing,
		versionTable: m.cfg.versionTable, sumTable: m.cfg.versionTable + checksumSuffix,
	}
	m.hooks.arm(run)
	defer m.hooks.arm(nil)
	defer func() { m.baselined = run.baselined }()
	if check {
		if err := m.preflight(ctx); err != nil {
			return nil, m.wrap(op, err)
		}
	}
	return fn()
}

// Baselined returns the files whose checksums the last Up, Down or other
// operation recorded for the first time: migrations applied before
// checksums were kept (by an older version of this kit or by goose itself),
// taken as they are now. Empty when there were none.
func (m *Migrator) Baselined() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.baselined)
}

// Status lists every known migration, by version, with its state.
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, error) {
	ss, err := m.p.Status(ctx)
	if err != nil {
		return nil, m.wrap("status", err)
	}
	recorded, err := m.checksums(ctx)
	if err != nil {
		return nil, m.wrap("status", err)
	}
	out := make([]MigrationStatus, 0, len(ss))
	for _, s := range ss {
		file := baseName(s.Source.Path)
		st := MigrationStatus{Version: s.Source.Version, File: file, Name: nameOf(file), AppliedAt: s.AppliedAt}
		st.State = StatePending
		st.Checksum = fileSum(m.fsys, s.Source)
		if s.State == goose.StateApplied {
			st.State = StateApplied
			st.RecordedChecksum = recorded[s.Source.Version]
			st.Drift = st.RecordedChecksum != "" && st.Checksum != "" && st.RecordedChecksum != st.Checksum
		}
		out = append(out, st)
	}
	return out, nil
}

// Version returns the highest applied version; 0 on a fresh database.
// It does not wait for the migration lock.
func (m *Migrator) Version(ctx context.Context) (int64, error) {
	current, _, err := m.p.GetVersions(ctx)
	if err != nil {
		return 0, m.wrap("version", err)
	}
	return current, nil
}

// HasPending reports whether some migration is not applied yet. It does not
// wait for the migration lock.
func (m *Migrator) HasPending(ctx context.Context) (bool, error) {
	ok, err := m.p.HasPending(ctx)
	if err != nil {
		return false, m.wrap("has-pending", err)
	}
	return ok, nil
}

func single(r *goose.MigrationResult) []*goose.MigrationResult {
	if r == nil {
		return nil
	}
	return []*goose.MigrationResult{r}
}

// results converts goose's results and error; on a partial failure it
// returns the migrations that did run before the failing one.
func (m *Migrator) results(op string, rs []*goose.MigrationResult, err error) ([]Result, error) {
	if err == nil {
		return resultsFrom(rs), nil
	}
	var pe *goose.PartialError
	if errors.As(err, &pe) {
		rs = pe.Applied
	}
	return resultsFrom(rs), m.wrap(op, err)
}
