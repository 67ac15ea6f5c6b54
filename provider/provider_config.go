package provider

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// This file holds the configuration types and their loading; the variables
// are read in provider_config_env.go, one database is checked in
// provider_config_check.go, and pgx's configurations are built in
// provider_config_url.go.

// Config is the provider's configuration as read from the environment: the
// provider-wide settings and one DatabaseConfig per name in DB_NAMES.
//
// A Config is a plain value, safe to copy and to read from several goroutines.
// Its String, GoString, LogValue and MarshalJSON redact every password.
type Config struct {
	// DatabaseURL (DATABASE_URL) is a shortcut for the main database's URL,
	// used when DB_MAIN_URL is not set. Default: none.
	DatabaseURL string `env:"DATABASE_URL"`
	// Names (DB_NAMES) lists the databases to open, comma separated; each name
	// selects the DB_<NAME>_* variables. Default: main.
	Names []string `env:"DB_NAMES" envDefault:"main" envSeparator:","`
	// LogLevel (DB_LOG_LEVEL) is the query log level: trace, debug, info (every
	// query), warn (failed and slow queries), error (failed queries) or none.
	// Default: warn.
	LogLevel string `env:"DB_LOG_LEVEL" envDefault:"warn"`
	// SlowQuery (DB_SLOW_QUERY) logs a query that takes at least this long at
	// warn level; 0 disables. Default: 500ms.
	SlowQuery time.Duration `env:"DB_SLOW_QUERY" envDefault:"500ms"`
	// LogParams (DB_LOG_PARAMS) puts query parameters in logs and spans.
	// Default: false (parameters are never logged).
	LogParams bool `env:"DB_LOG_PARAMS" envDefault:"false"`

	// Databases holds one entry per name in Names, in that order.
	Databases []DatabaseConfig `env:"-"`
}

// DatabaseConfig is one named database, read from the variables prefixed
// DB_<NAME>_ (DB_MAIN_URL, DB_ANALYTICS_POOL_MAX_CONNS, …). The field
// comments name the variable without its prefix.
//
// A DatabaseConfig is a plain value, safe to copy and to read from several
// goroutines. Its String, GoString, LogValue and MarshalJSON redact every
// password.
type DatabaseConfig struct {
	// Name is the database's name from DB_NAMES, in lower case.
	Name string `env:"-"`

	// URL (URL) is a postgres:// or postgresql:// URL; for the main database
	// DATABASE_URL is used when it is unset. Reserved characters in the user
	// name and password must be percent-encoded (@ as %40). When set, HOST,
	// PORT, USER, DBNAME and SSLMODE must not be. Default: none (use HOST…).
	URL string `env:"URL"`
	// Host (HOST) is the server's host name, IP address or Unix socket
	// directory. Default: localhost.
	Host string `env:"HOST" envDefault:"localhost"`
	// Port (PORT) is the server's port. Default: 5432.
	Port int `env:"PORT" envDefault:"5432"`
	// User (USER) is the role to connect as. Default: postgres.
	User string `env:"USER" envDefault:"postgres"`
	// Password (PASSWORD) is the role's password; it is also used by a URL or
	// replica URL without one. Default: none.
	Password string `env:"PASSWORD"`
	// PasswordFile (PASSWORD_FILE) names a file holding the password (a
	// trailing newline is trimmed); exclusive with PASSWORD. After loading,
	// Password holds its content. Default: none.
	PasswordFile string `env:"PASSWORD_FILE"`
	// DBName (DBNAME) is the database to connect to. Default: the user name.
	DBName string `env:"DBNAME"`
	// SSLMode (SSLMODE) is one of disable, allow, prefer, require, verify-ca,
	// verify-full. Default: prefer.
	SSLMode string `env:"SSLMODE" envDefault:"prefer"`
	// ReplicaURLs (REPLICA_URLS) are comma-separated URLs of read replicas,
	// each opened as a pool of its own with the settings below. Default: none.
	ReplicaURLs []string `env:"REPLICA_URLS" envSeparator:","`
	// ReplicaMaxLag (REPLICA_MAX_LAG) is how far behind the primary a replica
	// may be and still take reads (uow.ReplicaMaxLag); Health reports each
	// replica's lag against it. Default: 5s.
	ReplicaMaxLag time.Duration `env:"REPLICA_MAX_LAG" envDefault:"5s"`
	// ReplicaTokenWait (REPLICA_TOKEN_WAIT) bounds how long a read given a
	// read-your-writes token waits for a replica to replay it before it runs
	// on the primary (uow.ReplicaTokenWait); 0 never waits. Default: 200ms.
	ReplicaTokenWait time.Duration `env:"REPLICA_TOKEN_WAIT" envDefault:"200ms"`
	// ReplicaProbeInterval (REPLICA_PROBE_INTERVAL) is how often the replicas'
	// lag is measured (uow.ReplicaProbeInterval), within 10ms and 1m.
	// Default: 1s.
	ReplicaProbeInterval time.Duration `env:"REPLICA_PROBE_INTERVAL" envDefault:"1s"`

	// PoolMaxConns (POOL_MAX_CONNS) is the largest number of connections in a
	// pool. Default: 10.
	PoolMaxConns int `env:"POOL_MAX_CONNS" envDefault:"10"`
	// PoolMinConns (POOL_MIN_CONNS) is the number of connections a pool keeps
	// open. Default: 0.
	PoolMinConns int `env:"POOL_MIN_CONNS" envDefault:"0"`
	// MaxConnLifetime (MAX_CONN_LIFETIME) closes a connection this long after
	// it was opened; 0 never does. Default: 1h.
	MaxConnLifetime time.Duration `env:"MAX_CONN_LIFETIME" envDefault:"1h"`
	// MaxConnIdleTime (MAX_CONN_IDLE_TIME) closes a connection idle this
	// long; 0 never does. Default: 30m.
	MaxConnIdleTime time.Duration `env:"MAX_CONN_IDLE_TIME" envDefault:"30m"`
	// HealthCheckPeriod (HEALTH_CHECK_PERIOD) is how often a pool checks its
	// idle connections. Default: 1m.
	HealthCheckPeriod time.Duration `env:"HEALTH_CHECK_PERIOD" envDefault:"1m"`

	// ConnectTimeout (CONNECT_TIMEOUT) bounds one connection attempt, and
	// each health check. Default: 5s.
	ConnectTimeout time.Duration `env:"CONNECT_TIMEOUT" envDefault:"5s"`
	// ConnectRetries (CONNECT_RETRIES) is how many times New retries a
	// transient connection failure before giving up. Default: 5.
	ConnectRetries int `env:"CONNECT_RETRIES" envDefault:"5"`
	// ConnectBackoff (CONNECT_BACKOFF) is the wait before the first retry; it
	// doubles on each retry, with jitter. Default: 250ms.
	ConnectBackoff time.Duration `env:"CONNECT_BACKOFF" envDefault:"250ms"`
	// ConnectBackoffMax (CONNECT_BACKOFF_MAX) caps the wait between retries.
	// Default: 5s.
	ConnectBackoffMax time.Duration `env:"CONNECT_BACKOFF_MAX" envDefault:"5s"`

	// StatementTimeout (STATEMENT_TIMEOUT) is the session's statement_timeout;
	// 0 keeps the server's. Default: 0.
	StatementTimeout time.Duration `env:"STATEMENT_TIMEOUT" envDefault:"0s"`
	// LockTimeout (LOCK_TIMEOUT) is the session's lock_timeout; 0 keeps the
	// server's. Default: 0.
	LockTimeout time.Duration `env:"LOCK_TIMEOUT" envDefault:"0s"`
	// IdleInTxTimeout (IDLE_IN_TX_TIMEOUT) is the session's
	// idle_in_transaction_session_timeout; 0 keeps the server's. Default: 0.
	IdleInTxTimeout time.Duration `env:"IDLE_IN_TX_TIMEOUT" envDefault:"0s"`
	// ExecMode (EXEC_MODE) is pgx's query exec mode: cache_statement,
	// cache_describe, describe_exec, exec or simple_protocol (behind
	// PgBouncer in transaction mode use exec or simple_protocol).
	// Default: cache_statement.
	ExecMode string `env:"EXEC_MODE" envDefault:"cache_statement"`
	// ApplicationName (APPLICATION_NAME) is shown in pg_stat_activity.
	// Default: the URL's application_name, else the executable's name.
	ApplicationName string `env:"APPLICATION_NAME"`

	// MigrateURL (MIGRATE_URL) is the postgres:// URL cmd/migrate connects
	// with instead of URL or HOST…: a role that owns the schema, while the
	// application connects as one that only reads and writes rows. The
	// provider never opens it. Default: none (migrations connect as the
	// application does).
	MigrateURL string `env:"MIGRATE_URL"`
	// MigratePasswordFile (MIGRATE_PASSWORD_FILE) names a file holding the
	// password of MIGRATE_URL's role, when the URL has none (a trailing
	// newline is trimmed). Default: none.
	MigratePasswordFile string `env:"MIGRATE_PASSWORD_FILE"`

	// urlVar names the variable URL came from (DB_MAIN_URL or DATABASE_URL).
	urlVar string
	// migratePassword is MIGRATE_PASSWORD_FILE's content.
	migratePassword string
}

// LoadConfig reads and validates the configuration from environ, or from the
// process environment when environ is nil. It reports every problem at once
// (errors.Join), each naming its variable; the error wraps ErrConfig.
func LoadConfig(environ map[string]string) (Config, error) {
	cfg, _, err := loadConfig(environ)
	return cfg, err
}

// LoadDatabase reads and validates the variables of the one database name
// (DB_<NAME>_*, and DATABASE_URL for main) from environ, or from the
// process environment when environ is nil, whether DB_NAMES lists it or
// not: what a tool working on one database needs (cmd/migrate -db NAME).
// The error wraps ErrConfig and names each variable, as LoadConfig's does.
func LoadDatabase(environ map[string]string, name string) (DatabaseConfig, error) {
	if environ == nil {
		environ = env.ToMap(os.Environ())
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if !validName.MatchString(name) {
		return DatabaseConfig{}, fmt.Errorf("%w: database name %q must be a letter followed by letters, digits or _ (as in DB_NAMES)", ErrConfig, name)
	}
	var databaseURL string
	if name == mainName {
		databaseURL = environ["DATABASE_URL"]
	}
	var problems []error
	db := loadDatabase(name, databaseURL, environ, &problems)
	if len(problems) > 0 {
		return db, configError(problems)
	}
	return db, nil
}

// Accepted values of the enumerated variables.
var (
	sslModes  = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
	logLevels = []string{"trace", "debug", "info", "warn", "error", "none"}
	validName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// mainName is the database that DATABASE_URL and Provider.Main refer to.
const mainName = "main"

// loadConfig is LoadConfig that also returns the variables it ignored.
func loadConfig(environ map[string]string) (Config, []ignoredVar, error) {
	if environ == nil {
		environ = env.ToMap(os.Environ())
	}
	var (
		cfg      Config
		problems []error
	)
	bad := parseEnv(&cfg, "", environ, &problems)

	if !bad["DB_LOG_LEVEL"] {
		cfg.LogLevel = strings.ToLower(strings.TrimSpace(cfg.LogLevel))
		if !slices.Contains(logLevels, cfg.LogLevel) {
			problems = append(problems, varErr("DB_LOG_LEVEL", "one of %s; got %q", strings.Join(logLevels, ", "), cfg.LogLevel))
		}
	}
	if !bad["DB_SLOW_QUERY"] && cfg.SlowQuery < 0 {
		problems = append(problems, varErr("DB_SLOW_QUERY", "must not be negative (0 disables), got %s", cfg.SlowQuery))
	}

	names := checkNames(cfg.Names, &problems)
	cfg.Names = names
	if cfg.DatabaseURL != "" && !slices.Contains(names, mainName) {
		problems = append(problems, varErr("DATABASE_URL", "is set but DB_NAMES (%s) has no %q; add it or unset DATABASE_URL", strings.Join(names, ","), mainName))
	}

	for _, name := range names {
		cfg.Databases = append(cfg.Databases, loadDatabase(name, cfg.DatabaseURL, environ, &problems))
	}
	warnings := ignoredVars(names, environ)
	if len(problems) > 0 {
		return cfg, warnings, configError(problems)
	}
	return cfg, warnings, nil
}

// configError joins problems under ErrConfig, one per line.
func configError(problems []error) error {
	lines := make([]error, len(problems))
	for i, p := range problems {
		lines[i] = oneLine{p}
	}
	return fmt.Errorf("%w:\n%w", ErrConfig, errors.Join(lines...))
}

// checkNames normalises DB_NAMES and reports bad, repeated or overlapping names.
func checkNames(raw []string, problems *[]error) []string {
	var names []string
	for _, n := range raw {
		n = strings.ToLower(strings.TrimSpace(n))
		switch {
		case n == "":
			continue
		case !validName.MatchString(n):
			*problems = append(*problems, varErr("DB_NAMES", "each name must be a letter followed by letters, digits or _; got %q", n))
		case slices.Contains(names, n):
			*problems = append(*problems, varErr("DB_NAMES", "lists %q twice", n))
		default:
			names = append(names, n)
		}
	}
	if len(names) == 0 && len(*problems) == 0 {
		*problems = append(*problems, varErr("DB_NAMES", "must name at least one database, e.g. main"))
	}
	// "main" and "main_pool" would share DB_MAIN_POOL_* variables.
	for _, a := range names {
		for _, b := range names {
			if a != b && strings.HasPrefix(b, a+"_") {
				*problems = append(*problems, varErr("DB_NAMES", "names %q and %q overlap (DB_%s_… is read for both); rename one", a, b, strings.ToUpper(b)))
			}
		}
	}
	return names
}
