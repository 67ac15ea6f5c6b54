// Package dbtest gives each test a migrated PostgreSQL database: its own
// ([New], [NewURL]) or a transaction that is rolled back ([Tx]).
//
//	func TestOrders(t *testing.T) {
//		t.Parallel()
//		pool := dbtest.New(t) // migrated with the nearest db/migrations
//		...
//	}
//
// Databases are clones of a template migrated once per set of migrations
// (keyed by a hash of the migration files, made by pgtestdb, kept on the server across runs).
// A few clones are made ahead, in the background, so that New hands one over
// at once: $DBTEST_POOL_SIZE ([PoolSizeEnv]) of them per template, by default
// GOMAXPROCS. Each clone goes to one test only; no other test ever touched
// it. A test's database is dropped in the background when the test passes,
// and kept when it fails, its URL logged (the password masked).
//
// [Tx] is cheaper still, for a test that needs no commit: a transaction on a
// database shared by the tests of the process, rolled back when the test
// ends. Repository code built on uow runs in it unchanged; see [Tx] for what
// it cannot test.
//
// The server is the process-wide [Server]: the one of $DBTEST_DATABASE_URL
// ([DatabaseURLEnv]) when set, else one localpg starts (Docker, else local
// binaries) and removes when the test binary exits. DATABASE_URL and
// TEST_DATABASE_URL are never used: dbtest creates a role and databases, and
// does so only on a server named for that.
//
// A test binary that uses dbtest runs its tests through [Main], which stops
// the background work and drops what is left before the process exits:
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Main(m).Run()) }
//
// Databases of a test binary that was killed are swept by the next one that
// uses the same server (see [DatabaseURLEnv]).
//
// Everything here is safe for parallel tests.
package dbtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/internal/pgtypes"
	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/internal/testdb"
)

// MigrationsDirEnv names the variable that overrides the default migrations
// directory (an absolute path, or one relative to the package under test).
const MigrationsDirEnv = "DBTEST_MIGRATIONS_DIR"

// DefaultMaxConns is the pool size of [New] unless [WithMaxConns] says otherwise.
const DefaultMaxConns = 8

// startTimeout bounds the start of the shared server.
const startTimeout = 2 * time.Minute

// Option configures [New], [NewURL] and [Tx]. Options are immutable: share them freely.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	fsys        fs.FS
	empty       bool
	sets        []testdb.Set // WithMigrationSet's, migrated after fsys in this order
	maxConns    int32
	maxConnsSet bool
}

// WithMigrations migrates the template with the goose migrations at the root
// of fsys (e.g. db.Migrations) instead of the default: the nearest
// db/migrations directory found walking up from the working directory, or
// $DBTEST_MIGRATIONS_DIR.
func WithMigrations(fsys fs.FS) Option {
	return optionFunc(func(c *config) error {
		if fsys == nil {
			return errors.New("WithMigrations: fsys must not be nil")
		}
		c.fsys, c.empty = fsys, false
		return nil
	})
}

// defaultVersionTable is the version table of the first set (migrate's default).
const defaultVersionTable = "goose_db_version"

// WithMigrationSet migrates the template, after the first set of migrations
// (the default directory, or [WithMigrations]'s), with the goose migrations
// at the root of fsys as well, their versions kept in versionTable (see
// migrate.WithVersionTable), as a service migrates a library's migrations
// beside its own:
//
//	dbtest.New(t, dbtest.WithMigrationSet(outbox.Migrations(), outbox.VersionTable))
//
// Sets are migrated in the order of the options; each set's table and files
// key the template, so that changing either migrates a new one. Tests with
// the same sets in the same order share the template.
func WithMigrationSet(fsys fs.FS, versionTable string) Option {
	return optionFunc(func(c *config) error {
		switch {
		case fsys == nil:
			return fmt.Errorf("WithMigrationSet(%q): fsys must not be nil", versionTable)
		case versionTable == "":
			return errors.New("WithMigrationSet: versionTable must not be empty (each set keeps its versions in a table of its own)")
		case versionTable == defaultVersionTable:
			return fmt.Errorf("WithMigrationSet(%q): that is the first set's version table: name another", versionTable)
		}
		for _, set := range c.sets {
			if set.VersionTable == versionTable {
				return fmt.Errorf("WithMigrationSet(%q): version table given twice", versionTable)
			}
		}
		c.sets = append(c.sets, testdb.Set{FS: fsys, VersionTable: versionTable})
		return nil
	})
}

// WithoutMigrations gives an empty database.
func WithoutMigrations() Option {
	return optionFunc(func(c *config) error {
		c.fsys, c.empty = nil, true
		return nil
	})
}

// WithMaxConns sets the size of the pool [New] returns (default
// [DefaultMaxConns]). [Tx] refuses it: its pool is shared.
func WithMaxConns(n int32) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithMaxConns(%d): want at least 1", n)
		}
		c.maxConns, c.maxConnsSet = n, true
		return nil
	})
}

// New returns a pool on a fresh database of its own, migrated per the options.
// Its connections know every enum type of the database and its array type,
// as provider's do; types created after a connection opened need
// pool.Reset().
// The pool is closed in t.Cleanup, then the database is dropped (in the
// background) if t passed, kept and logged if it failed.
// Any failure to provide it fails t at once.
func New(t testing.TB, opts ...Option) *pgxpool.Pool {
	t.Helper()
	return newPool(t, opts)
}

func newPool(t tb, opts []Option) *pgxpool.Pool {
	t.Helper()
	cfg := options(t, opts, "New")
	c := take(t, cfg)
	pool := c.pool
	if pool == nil || pool.Config().MaxConns != cfg.maxConns {
		if pool != nil {
			pool.Close()
		}
		var err error
		if pool, err = openPool(context.WithoutCancel(t.Context()), c.url, cfg.maxConns); err != nil {
			t.Fatalf("dbtest: %v", err)
		}
	}
	t.Cleanup(func() {
		pool.Close()
		finish(t, c.name, c.url, false)
	})
	return pool
}

// openPool opens a pool of maxConns on the database at dbURL.
func openPool(ctx context.Context, dbURL string, maxConns int32) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, secret.Error(fmt.Errorf("parse the test database URL: %w", err))
	}
	pcfg.MaxConns = maxConns
	// As provider's pools do: every enum type and its array type, per connection.
	pcfg.AfterConnect = pgtypes.Register
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, secret.Error(fmt.Errorf("open a pool on the test database: %w", err))
	}
	return pool, nil
}

// NewURL is [New] returning the database's connection string (it carries
// pgtestdb's role password: do not log it). Close every connection you open
// before the test ends: a connection still open then fails t.
func NewURL(t testing.TB, opts ...Option) string {
	t.Helper()
	return newURL(t, opts)
}

func newURL(t tb, opts []Option) string {
	t.Helper()
	cfg := options(t, opts, "NewURL")
	c := take(t, cfg)
	if c.pool != nil {
		c.pool.Close() // the test opens its own connections
	}
	t.Cleanup(func() { finish(t, c.name, c.url, true) })
	return c.url
}

// tb is what dbtest needs of a testing.TB (the benchmarks pass their own,
// whose cleanups run after each round).
type tb interface {
	Helper()
	Context() context.Context
	Cleanup(func())
	Failed() bool
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

var _ tb = testing.TB(nil)

func options(t tb, opts []Option, caller string) config {
	t.Helper()
	cfg := config{maxConns: DefaultMaxConns}
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, errors.New("option must not be nil"))
			continue
		}
		if err := o.apply(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.empty && len(cfg.sets) > 0 {
		errs = append(errs, errors.New("WithoutMigrations and WithMigrationSet conflict: an empty database has no migrations"))
	}
	if cfg.maxConnsSet && caller == "Tx" {
		errs = append(errs, errors.New("WithMaxConns applies to New, not Tx (its pool is shared)"))
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return cfg
}

// defaultMigrations returns $DBTEST_MIGRATIONS_DIR or the nearest
// db/migrations directory at or above the working directory.
func defaultMigrations(t tb) fs.FS {
	t.Helper()
	if dir := os.Getenv(MigrationsDirEnv); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("dbtest: %s=%s is not a directory", MigrationsDirEnv, dir)
		}
		return os.DirFS(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("dbtest: find db/migrations: %v", err)
	}
	for dir := wd; ; {
		cand := filepath.Join(dir, "db", "migrations")
		if fi, err := os.Stat(cand); err == nil && fi.IsDir() {
			return os.DirFS(cand)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Fatalf("dbtest: no db/migrations directory at or above %s: set %s to the migrations directory "+
		"or pass dbtest.WithMigrations", wd, MigrationsDirEnv)
	return nil
}
