// Package dbtest gives each test its own PostgreSQL database, cloned from a
// template that is migrated once per set of migrations.
//
//	func TestOrders(t *testing.T) {
//		t.Parallel()
//		pool := dbtest.New(t) // migrated with the nearest db/migrations
//		...
//	}
//
// The server is the process-wide [Server]: whatever [localpg.Start] resolves
// (DATABASE_URL or TEST_DATABASE_URL, else Docker, else local binaries),
// started once and left to localpg's watchdog, which removes it when the test
// binary exits. Templates and clones are made by pgtestdb: the template is
// keyed by [migrate.Hash] of the migrations, so it is migrated once per
// change, even across test binaries sharing a server. A test's database is
// dropped when the test passes and kept when it fails, its URL logged (the
// password, pgtestdb.DefaultRolePassword, masked).
//
// Everything here is safe for parallel tests.
package dbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver pgtestdb connects with
	"github.com/peterldowns/pgtestdb"

	"github.com/cortexerp/datalayer/internal/pgtypes"
	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/localpg"
	"github.com/cortexerp/datalayer/migrate"
)

// MigrationsDirEnv names the variable that overrides the default migrations
// directory (an absolute path, or one relative to the package under test).
const MigrationsDirEnv = "DBTEST_MIGRATIONS_DIR"

// DefaultMaxConns is the pool size of [New] unless [WithMaxConns] says otherwise.
const DefaultMaxConns = 8

// startTimeout bounds the start of the shared server.
const startTimeout = 2 * time.Minute

// Option configures [New] and [NewURL]. Options are immutable: share them freely.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	fsys     fs.FS
	empty    bool
	maxConns int32
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

// WithoutMigrations gives an empty database.
func WithoutMigrations() Option {
	return optionFunc(func(c *config) error {
		c.fsys, c.empty = nil, true
		return nil
	})
}

// WithMaxConns sets the size of the pool [New] returns (default [DefaultMaxConns]).
func WithMaxConns(n int32) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithMaxConns(%d): want at least 1", n)
		}
		c.maxConns = n
		return nil
	})
}

// New returns a pool on a fresh database of its own, migrated per the options.
// Its connections know every enum type of the database and its array type,
// as provider's do; types created after a connection opened need
// pool.Reset().
// The pool is closed in t.Cleanup, then the database is dropped if t passed.
// Any failure to provide it fails t at once.
func New(t testing.TB, opts ...Option) *pgxpool.Pool {
	t.Helper()
	cfg := options(t, opts)
	dbURL := NewURL(t, opts...)
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("dbtest: parse the test database URL: %v", err)
	}
	pcfg.MaxConns = cfg.maxConns
	// As provider's pools do: every enum type and its array type, per connection.
	pcfg.AfterConnect = pgtypes.Register
	pool, err := pgxpool.NewWithConfig(context.WithoutCancel(t.Context()), pcfg)
	if err != nil {
		t.Fatalf("dbtest: open a pool on the test database: %v", err)
	}
	t.Cleanup(pool.Close) // runs before pgtestdb's drop, registered earlier
	return pool
}

// NewURL is [New] returning the database's connection string (it carries
// pgtestdb's role password: do not log it). Close every connection you open
// before the test ends, or the database cannot be dropped and t fails.
func NewURL(t testing.TB, opts ...Option) string {
	t.Helper()
	cfg := options(t, opts)
	var m pgtestdb.Migrator = pgtestdb.NoopMigrator{}
	if !cfg.empty {
		fsys := cfg.fsys
		if fsys == nil {
			fsys = defaultMigrations(t)
		}
		hash, err := migrate.Hash(fsys)
		if err != nil {
			t.Fatalf("dbtest: %v", err)
		}
		m = migrator{fsys: fsys, hash: hash}
	}
	base := baseConfig(t)
	rt := &redactingTB{TB: t}
	inst := pgtestdb.Custom(rt, base, m)
	dbURL := inst.URL()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dbtest: kept database %s for inspection: %s", inst.Database, secret.Redact(dbURL))
		}
	})
	return dbURL
}

func options(t testing.TB, opts []Option) config {
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
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return cfg
}

// shared is the process-wide server.
var shared struct {
	once sync.Once
	srv  *localpg.Server
	err  error
}

// Server returns the process-wide server, starting it on first use with
// [localpg.Start]. It is never stopped explicitly: localpg's watchdog removes
// it when the process exits. A failure to start it fails t.
//
// Like localpg, it honours DATABASE_URL and TEST_DATABASE_URL first: the tests
// then create the role pgtdbuser and databases named testdb_tpl_* on that
// server. Point them at a server meant for tests.
func Server(t testing.TB) *localpg.Server {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		shared.srv, shared.err = localpg.Start(ctx)
	})
	if shared.err != nil {
		t.Fatalf("dbtest: start a PostgreSQL server: %v", shared.err)
	}
	return shared.srv
}

// baseConfig describes the shared server's admin connection for pgtestdb.
func baseConfig(t testing.TB) pgtestdb.Config {
	t.Helper()
	c, err := PgtestdbConfig(Server(t).URL())
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return c
}

// PgtestdbConfig returns the pgtestdb configuration of the server at url
// (a postgres:// URL or a keyword/value string), as New builds it, for code
// that drives pgtestdb itself (a benchmark, a TestMain). Its error never
// holds the password.
func PgtestdbConfig(raw string) (pgtestdb.Config, error) {
	c := pgtestdb.Config{DriverName: "pgx"}
	if u, err := url.Parse(raw); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.Host != "" {
		// pgtestdb pastes these into a URL unescaped: escape them here.
		c.User = url.PathEscape(u.User.Username())
		if p, ok := u.User.Password(); ok {
			c.Password = url.PathEscape(p)
		}
		c.Host, c.Port = u.Hostname(), u.Port()
		c.Database = strings.TrimPrefix(u.Path, "/")
		c.Options = u.RawQuery
	} else {
		pc, err := pgconn.ParseConfig(raw)
		if err != nil {
			return c, errors.New("the server's connection string is not valid")
		}
		c.User, c.Password = url.PathEscape(pc.User), url.PathEscape(pc.Password)
		c.Host, c.Port, c.Database = pc.Host, fmt.Sprint(pc.Port), pc.Database
		c.Options = "sslmode=disable"
		if pc.TLSConfig != nil {
			c.Options = "sslmode=require"
		}
	}
	if strings.Contains(c.Host, ":") {
		c.Host = "[" + c.Host + "]"
	}
	if c.Port == "" {
		c.Port = "5432"
	}
	if c.Database == "" {
		c.Database = "postgres"
	}
	return c, nil
}

// migrator is the pgtestdb.Migrator for a goose migrations fs.FS.
type migrator struct {
	fsys fs.FS
	hash string
}

func (m migrator) Hash() (string, error) { return "dbtest-goose-" + m.hash, nil }

func (m migrator) Migrate(ctx context.Context, db *sql.DB, _ pgtestdb.Config) error {
	mg, err := migrate.New(db, m.fsys)
	if err != nil {
		return err
	}
	defer mg.Close()
	if _, err := mg.Up(ctx); err != nil {
		return err
	}
	return nil
}

// defaultMigrations returns $DBTEST_MIGRATIONS_DIR or the nearest
// db/migrations directory at or above the working directory.
func defaultMigrations(t testing.TB) fs.FS {
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

// redactingTB masks passwords in what pgtestdb logs (it logs every test
// database's URL, password included) and in its fatal errors.
type redactingTB struct {
	testing.TB
}

var _ pgtestdb.TB = (*redactingTB)(nil)

func (r *redactingTB) Logf(format string, args ...any) {
	r.TB.Helper()
	r.TB.Log(secret.Text(fmt.Sprintf(format, args...)))
}

func (r *redactingTB) Fatalf(format string, args ...any) {
	r.TB.Helper()
	r.TB.Fatal(secret.Text(fmt.Sprintf(format, args...)))
}
