package provider

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/internal/secret"
)

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

	// urlVar names the variable URL came from (DB_MAIN_URL or DATABASE_URL).
	urlVar string
}

// EnvVars lists every variable the provider reads, with the database
// prefix shown as DB_<NAME>_ ("DB_<NAME>_POOL_MAX_CONNS").
func EnvVars() []string {
	var vars []string
	for _, f := range envFields(reflect.TypeFor[Config]()) {
		vars = append(vars, f.key)
	}
	for _, f := range envFields(reflect.TypeFor[DatabaseConfig]()) {
		vars = append(vars, "DB_<NAME>_"+f.key)
	}
	return vars
}

// LoadConfig reads and validates the configuration from environ, or from the
// process environment when environ is nil. It reports every problem at once
// (errors.Join), each naming its variable; the error wraps ErrConfig.
func LoadConfig(environ map[string]string) (Config, error) {
	cfg, _, err := loadConfig(environ)
	return cfg, err
}

// Accepted values of the enumerated variables.
var (
	sslModes  = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
	logLevels = []string{"trace", "debug", "info", "warn", "error", "none"}
	execModes = map[string]pgx.QueryExecMode{
		"cache_statement": pgx.QueryExecModeCacheStatement,
		"cache_describe":  pgx.QueryExecModeCacheDescribe,
		"describe_exec":   pgx.QueryExecModeDescribeExec,
		"exec":            pgx.QueryExecModeExec,
		"simple_protocol": pgx.QueryExecModeSimpleProtocol,
	}
	execModeNames = []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"}
	validName     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// mainName is the database that DATABASE_URL and Provider.Main refer to.
const mainName = "main"

// ignoredVar is a variable that looks meant for the provider but is not
// read: worth a warning.
type ignoredVar struct{ key, reason string }

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
		for i, p := range problems {
			problems[i] = oneLine{p}
		}
		return cfg, warnings, fmt.Errorf("%w:\n%w", ErrConfig, errors.Join(problems...))
	}
	return cfg, warnings, nil
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

// loadDatabase reads and validates DB_<NAME>_*.
func loadDatabase(name, databaseURL string, environ map[string]string, problems *[]error) DatabaseConfig {
	prefix := envPrefix(name)
	before := len(*problems)
	db := DatabaseConfig{Name: name}
	bad := parseEnv(&db, prefix, environ, problems)
	isSet := func(key string) bool { return environ[prefix+key] != "" }
	add := func(key, format string, args ...any) {
		*problems = append(*problems, varErr(prefix+key, format, args...))
	}

	db.urlVar = prefix + "URL"
	if db.URL == "" && name == mainName && databaseURL != "" {
		db.URL, db.urlVar = databaseURL, "DATABASE_URL"
	}

	// Password: PASSWORD or PASSWORD_FILE, never both.
	if db.PasswordFile != "" {
		if db.Password != "" {
			add("PASSWORD_FILE", "set either %sPASSWORD or %sPASSWORD_FILE, not both", prefix, prefix)
		} else if b, err := os.ReadFile(db.PasswordFile); err != nil {
			add("PASSWORD_FILE", "read password file: %v", err)
		} else {
			db.Password = strings.TrimRight(string(b), "\r\n")
			if db.Password == "" {
				add("PASSWORD_FILE", "file %s is empty", db.PasswordFile)
			}
		}
	}

	if db.URL != "" {
		for _, key := range []string{"HOST", "PORT", "USER", "DBNAME", "SSLMODE"} {
			if isSet(key) {
				add(key, "cannot be combined with %s; put it in the URL or unset %s", db.urlVar, db.urlVar)
			}
		}
		if u, err := parseURL(db.URL); err != nil {
			*problems = append(*problems, varErr(db.urlVar, "%v", err))
		} else if u.Password != "" && db.Password != "" {
			key := "PASSWORD"
			if db.PasswordFile != "" {
				key = "PASSWORD_FILE"
			}
			add(key, "%s already has a password; set it in one place", db.urlVar)
		}
	} else {
		if !bad[prefix+"PORT"] && (db.Port < 1 || db.Port > 65535) {
			add("PORT", "must be between 1 and 65535, got %d", db.Port)
		}
		if !slices.Contains(sslModes, db.SSLMode) {
			add("SSLMODE", "one of %s; got %s", strings.Join(sslModes, ", "), db.SSLMode)
		}
		if strings.TrimSpace(db.Host) == "" {
			add("HOST", "must not be blank")
		}
		if strings.TrimSpace(db.User) == "" {
			add("USER", "must not be blank")
		}
	}
	var replicas []string
	for i, r := range db.ReplicaURLs {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		replicas = append(replicas, r)
		if _, err := parseURL(r); err != nil {
			*problems = append(*problems, varErr(fmt.Sprintf("%sREPLICA_URLS[%d]", prefix, i), "%v", err))
		}
	}
	db.ReplicaURLs = replicas

	if !bad[prefix+"POOL_MAX_CONNS"] && (db.PoolMaxConns < 1 || db.PoolMaxConns > 1<<20) {
		add("POOL_MAX_CONNS", "must be at least 1, got %d", db.PoolMaxConns)
	}
	if !bad[prefix+"POOL_MIN_CONNS"] {
		switch {
		case db.PoolMinConns < 0:
			add("POOL_MIN_CONNS", "must not be negative, got %d", db.PoolMinConns)
		case !bad[prefix+"POOL_MAX_CONNS"] && db.PoolMinConns > db.PoolMaxConns:
			add("POOL_MIN_CONNS", "must be at most %sPOOL_MAX_CONNS (%d), got %d", prefix, db.PoolMaxConns, db.PoolMinConns)
		}
	}
	for _, d := range []struct {
		key      string
		v        time.Duration
		positive bool
	}{
		{"MAX_CONN_LIFETIME", db.MaxConnLifetime, false},
		{"MAX_CONN_IDLE_TIME", db.MaxConnIdleTime, false},
		{"HEALTH_CHECK_PERIOD", db.HealthCheckPeriod, true},
		{"CONNECT_TIMEOUT", db.ConnectTimeout, true},
		{"CONNECT_BACKOFF", db.ConnectBackoff, true},
		{"CONNECT_BACKOFF_MAX", db.ConnectBackoffMax, true},
		{"STATEMENT_TIMEOUT", db.StatementTimeout, false},
		{"LOCK_TIMEOUT", db.LockTimeout, false},
		{"IDLE_IN_TX_TIMEOUT", db.IdleInTxTimeout, false},
	} {
		switch {
		case bad[prefix+d.key]:
		case d.positive && d.v <= 0:
			add(d.key, "must be positive, got %s", d.v)
		case d.v < 0:
			add(d.key, "must not be negative (0 disables), got %s", d.v)
		case strings.HasSuffix(d.key, "_TIMEOUT") && !d.positive && d.v > 0 && d.v < time.Millisecond:
			add(d.key, "must be 0 or at least 1ms, got %s", d.v)
		}
	}
	if !bad[prefix+"CONNECT_BACKOFF"] && !bad[prefix+"CONNECT_BACKOFF_MAX"] && db.ConnectBackoff > 0 && db.ConnectBackoffMax < db.ConnectBackoff {
		add("CONNECT_BACKOFF_MAX", "must be at least %sCONNECT_BACKOFF (%s), got %s", prefix, db.ConnectBackoff, db.ConnectBackoffMax)
	}
	if !bad[prefix+"CONNECT_RETRIES"] && (db.ConnectRetries < 0 || db.ConnectRetries > 1000) {
		add("CONNECT_RETRIES", "must be between 0 and 1000, got %d", db.ConnectRetries)
	}
	db.ExecMode = strings.ToLower(strings.TrimSpace(db.ExecMode))
	if _, ok := execModes[db.ExecMode]; !ok {
		add("EXEC_MODE", "one of %s; got %s", strings.Join(execModeNames, ", "), db.ExecMode)
	}

	// pgx's own parse catches the rest (a bad port, an unknown sslmode).
	if len(*problems) == before {
		for i := -1; i < len(db.ReplicaURLs); i++ {
			if _, err := db.poolConfig(i); err != nil {
				*problems = append(*problems, err)
			}
		}
	}
	return db
}

// ignoredVars finds DB_<NAME>_* variables that are not read: a typo
// (DB_MAIN_POOL_MAXCONNS) or a name missing from DB_NAMES.
func ignoredVars(names []string, environ map[string]string) []ignoredVar {
	suffixes := map[string]bool{}
	for _, f := range envFields(reflect.TypeFor[DatabaseConfig]()) {
		suffixes[f.key] = true
	}
	var out []ignoredVar
	for key := range environ {
		rest, ok := strings.CutPrefix(key, "DB_")
		if !ok {
			continue
		}
		var reason string
		for _, n := range names {
			if suffix, ok := strings.CutPrefix(rest, strings.ToUpper(n)+"_"); ok && !suffixes[suffix] {
				reason = "not a variable of database " + n
			}
		}
		for suffix := range suffixes {
			name, ok := strings.CutSuffix(rest, "_"+suffix)
			if ok && name != "" && !slices.Contains(names, strings.ToLower(name)) {
				reason = strings.ToLower(name) + " is not in DB_NAMES"
			}
		}
		if reason != "" {
			out = append(out, ignoredVar{key, reason})
		}
	}
	slices.SortFunc(out, func(a, b ignoredVar) int { return strings.Compare(a.key, b.key) })
	return out
}

// envPrefix is the variable prefix of a database: DB_<NAME>_.
func envPrefix(name string) string { return "DB_" + strings.ToUpper(name) + "_" }

// parseEnv fills v from environ with caarlos0/env and turns its parse errors
// into problems naming the variable. It returns the variables that failed.
func parseEnv(v any, prefix string, environ map[string]string, problems *[]error) map[string]bool {
	bad := map[string]bool{}
	err := env.ParseWithOptions(v, env.Options{Prefix: prefix, Environment: environ})
	if err == nil {
		return bad
	}
	keys := map[string]string{}
	for _, f := range envFields(reflect.TypeOf(v).Elem()) {
		keys[f.field] = prefix + f.key
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		*problems = append(*problems, fmt.Errorf("read environment: %w", err))
		return bad
	}
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			*problems = append(*problems, fmt.Errorf("read environment: %w", e))
			continue
		}
		key := keys[pe.Name]
		bad[key] = true
		raw := environ[key]
		var want string
		switch pe.Type {
		case reflect.TypeFor[time.Duration]():
			want = "a duration such as 5s, 250ms or 1m30s"
		case reflect.TypeFor[bool]():
			want = "true or false"
		default:
			want = "an integer"
		}
		*problems = append(*problems, varErr(key, "must be %s, got %q", want, raw))
	}
	return bad
}

// envField is one struct field read from the environment.
type envField struct {
	field, key, def string
	hasDef          bool
}

// envFields lists the env-tagged fields of a config struct type.
func envFields(t reflect.Type) []envField {
	var fields []envField
	for sf := range t.Fields() {
		key, _, _ := strings.Cut(sf.Tag.Get("env"), ",")
		if key == "" || key == "-" {
			continue
		}
		def, hasDef := sf.Tag.Lookup("envDefault")
		fields = append(fields, envField{field: sf.Name, key: key, def: def, hasDef: hasDef})
	}
	return fields
}

// lineBreaks escapes what would break a problem over several lines.
var lineBreaks = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\v", `\v`, "\f", `\f`, "\u2028", `\u2028`, "\u2029", `\u2029`)

// oneLine is a problem printed on one line, whatever values it quotes (a
// DB_MAIN_SSLMODE with a line break in it), as ErrConfig's "one per line"
// promises.
type oneLine struct{ error }

func (e oneLine) Error() string { return lineBreaks.Replace(e.error.Error()) }
func (e oneLine) Unwrap() error { return e.error }

// varErr is a configuration problem naming its variable.
func varErr(key, format string, args ...any) error {
	return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
}

// poolConfig builds the pgxpool configuration of the primary (replica < 0)
// or of replica i. Errors never contain the password.
func (c DatabaseConfig) poolConfig(replica int) (*pgxpool.Config, error) {
	var (
		connString string
		password   = c.Password
		source     = c.urlVar
	)
	switch {
	case replica >= 0:
		source = fmt.Sprintf("%sREPLICA_URLS[%d]", envPrefix(c.Name), replica)
		u, err := parseURL(c.ReplicaURLs[replica])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		connString = u.WithoutPassword()
		if u.Password != "" {
			password = u.Password
		}
	case c.URL != "":
		u, err := parseURL(c.URL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		connString = u.WithoutPassword()
		if u.Password != "" {
			password = u.Password
		}
	default:
		source = envPrefix(c.Name) + "HOST/PORT/USER/DBNAME/SSLMODE"
		connString = discreteURL(c)
	}

	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// connString has no password, so pgx's message is safe to show.
		return nil, fmt.Errorf("%s: %w", source, secret.Error(err))
	}
	cc := pc.ConnConfig
	if password != "" {
		cc.Password = password
	}
	cc.ConnectTimeout = c.ConnectTimeout
	cc.DefaultQueryExecMode = execModes[c.ExecMode]
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	setTimeout := func(param string, d time.Duration) {
		if d > 0 {
			cc.RuntimeParams[param] = strconv.FormatInt(d.Milliseconds(), 10)
		}
	}
	setTimeout("statement_timeout", c.StatementTimeout)
	setTimeout("lock_timeout", c.LockTimeout)
	setTimeout("idle_in_transaction_session_timeout", c.IdleInTxTimeout)
	switch {
	case c.ApplicationName != "":
		cc.RuntimeParams["application_name"] = c.ApplicationName
	case cc.RuntimeParams["application_name"] == "":
		cc.RuntimeParams["application_name"] = filepath.Base(os.Args[0])
	}

	pc.MaxConns = int32(c.PoolMaxConns)
	pc.MinConns = int32(c.PoolMinConns)
	pc.MaxConnLifetime = c.MaxConnLifetime
	pc.MaxConnIdleTime = c.MaxConnIdleTime
	if pc.MaxConnIdleTime == 0 {
		pc.MaxConnIdleTime = math.MaxInt64 // pgx would close every idle connection
	}
	pc.HealthCheckPeriod = c.HealthCheckPeriod
	return pc, nil
}
