package migrate

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
)

// Defaults of the options below.
const (
	// DefaultLockTimeout is the lock_timeout of migration sessions opened by Open.
	DefaultLockTimeout = 5 * time.Second
	// DefaultLockWait is how long a migrator waits for another one to finish.
	DefaultLockWait = 5 * time.Minute
	// DefaultConnectTimeout bounds connecting when the URL sets no connect_timeout.
	DefaultConnectTimeout = 10 * time.Second
)

// An Option configures a Migrator. Options that get a bad value make New and
// Open fail with an error naming the option.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	lockTimeout    time.Duration
	lockWait       time.Duration
	tableLock      bool
	connectTimeout time.Duration
	logger         *slog.Logger
	goMigrations   []*goose.Migration
	acceptDrift    bool
	allowMissing   bool
	versionTable   string // goose's version table; checksums go to versionTable + "_checksums"
	numbering      Numbering
}

func newConfig(opts []Option) (config, error) {
	c := config{
		lockTimeout:    DefaultLockTimeout,
		lockWait:       DefaultLockWait,
		connectTimeout: DefaultConnectTimeout,
		versionTable:   goose.DefaultTablename,
	}
	var errs []error
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&c); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

// WithLockTimeout sets lock_timeout on every connection Open makes (default
// DefaultLockTimeout): a DDL statement queued behind a long transaction fails
// after d instead of blocking all traffic on that table behind itself. The
// failed migration is rolled back; run it again later. 0 leaves the server's
// or role's setting. It has no effect on New: set lock_timeout on that
// *sql.DB's connections yourself (e.g. options=-c%20lock_timeout%3D5s in the URL).
func WithLockTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithLockTimeout: %v must not be negative", d)
		}
		if d%time.Millisecond != 0 {
			return fmt.Errorf("WithLockTimeout: %v must be whole milliseconds", d)
		}
		c.lockTimeout = d
		return nil
	})
}

// WithLockWait sets how long Up, Down and the others wait for the migration
// lock held by another migrator before failing (default DefaultLockWait). The
// lock is polled every second (goose's granularity), so d is rounded up to
// whole seconds.
func WithLockWait(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithLockWait: %v must be positive", d)
		}
		c.lockWait = d
		return nil
	})
}

// WithTableLock replaces the advisory session lock with goose's table lock
// (a row in table goose_lock, kept alive by a heartbeat), for connections
// through PgBouncer in transaction mode, where session state does not stick
// to a client. Open then also uses pgx's exec mode (no prepared statement
// cache). lock_timeout is still set per connection, which PgBouncer in
// transaction mode may not keep: prefer setting it on the role there
// (ALTER ROLE … SET lock_timeout = '5s').
func WithTableLock() Option {
	return optionFunc(func(c *config) error {
		c.tableLock = true
		return nil
	})
}

// WithConnectTimeout bounds each connection attempt made by Open when the URL
// sets no connect_timeout (default DefaultConnectTimeout).
func WithConnectTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithConnectTimeout: %v must be positive", d)
		}
		c.connectTimeout = d
		return nil
	})
}

// WithLogger logs each migration and statement goose runs, and lock
// problems, to l. By default nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: logger must not be nil")
		}
		c.logger = l
		return nil
	})
}

// WithGoMigrations adds Go migrations built with goose.NewGoMigration (see
// Create with kind "go"). goose's global registry is never read. Open keeps
// one connection, so there Go migrations must run in a transaction (RunTx);
// for RunDB ones use New with a *sql.DB of several connections.
func WithGoMigrations(ms ...*goose.Migration) Option {
	return optionFunc(func(c *config) error {
		for i, m := range ms {
			if m == nil {
				return fmt.Errorf("WithGoMigrations: migration %d is nil", i)
			}
		}
		c.goMigrations = append(c.goMigrations, ms...)
		return nil
	})
}

// WithAcceptDrift lets Up, UpByOne, UpTo and Redo run when an applied
// migration's file changed since it was applied ([ErrDrift]), and records
// the file's new checksum. The changed text is not run again: use it when
// the edit did not change what the migration does (a comment, formatting),
// or after applying the difference by hand.
func WithAcceptDrift() Option {
	return optionFunc(func(c *config) error {
		c.acceptDrift = true
		return nil
	})
}

// WithAllowMissing lets Up, UpByOne and UpTo apply migrations older than
// the database's current version that were never applied (a branch merged
// late), before the newer pending ones (goose's WithAllowOutofOrder).
// Without it they fail with [ErrMissing], naming the files.
func WithAllowMissing() Option {
	return optionFunc(func(c *config) error {
		c.allowMissing = true
		return nil
	})
}

// identPart is one unquoted lower-case SQL identifier.
var identPart = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// WithVersionTable records applied migrations in table name instead of
// goose_db_version, and their checksums in name + "_checksums", so that two
// sets of migrations (an application's and a library's) on one database
// never share state. name is an unquoted lower-case identifier, optionally
// schema-qualified ("outbox_goose_db_version", "ops.schema_version"), short
// enough that name + "_checksums" fits PostgreSQL's 63 bytes. The migration
// lock stays shared: two sets never migrate at the same moment.
func WithVersionTable(name string) Option {
	return optionFunc(func(c *config) error {
		table := name
		if schema, t, ok := strings.Cut(name, "."); ok {
			if !identPart.MatchString(schema) || len(schema) > 63 {
				return fmt.Errorf("WithVersionTable: schema %q must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes)", schema)
			}
			table = t
		}
		if !identPart.MatchString(table) {
			return fmt.Errorf("WithVersionTable: table %q must be a lower-case identifier ([a-z_][a-z0-9_]*), optionally schema-qualified", table)
		}
		if limit := 63 - len(checksumSuffix); len(table) > limit {
			return fmt.Errorf("WithVersionTable: table %q is %d bytes; at most %d so that %s%s fits 63", table, len(table), limit, table, checksumSuffix)
		}
		c.versionTable = name
		return nil
	})
}
