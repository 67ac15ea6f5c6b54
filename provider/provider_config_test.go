package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/execmode"
)

func TestLoadConfigParsesEveryVariable(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("file-secret\n"), 0o600))
	environ := map[string]string{
		"DB_NAMES":      "main, Analytics",
		"DB_LOG_LEVEL":  "INFO",
		"DB_SLOW_QUERY": "2s",
		"DB_LOG_PARAMS": "true",
		// main: discrete settings and every pool and session knob.
		"DB_MAIN_HOST":                "db.internal",
		"DB_MAIN_PORT":                "6432",
		"DB_MAIN_USER":                "app",
		"DB_MAIN_PASSWORD":            "main-secret",
		"DB_MAIN_DBNAME":              "erp",
		"DB_MAIN_SSLMODE":             "require",
		"DB_MAIN_POOL_MAX_CONNS":      "20",
		"DB_MAIN_POOL_MIN_CONNS":      "2",
		"DB_MAIN_MAX_CONN_LIFETIME":   "2h",
		"DB_MAIN_MAX_CONN_IDLE_TIME":  "5m",
		"DB_MAIN_HEALTH_CHECK_PERIOD": "30s",
		"DB_MAIN_CONNECT_TIMEOUT":     "3s",
		"DB_MAIN_CONNECT_RETRIES":     "7",
		"DB_MAIN_CONNECT_BACKOFF":     "100ms",
		"DB_MAIN_CONNECT_BACKOFF_MAX": "2s",
		"DB_MAIN_STATEMENT_TIMEOUT":   "30s",
		"DB_MAIN_LOCK_TIMEOUT":        "2s",
		"DB_MAIN_IDLE_IN_TX_TIMEOUT":  "1m",
		"DB_MAIN_EXEC_MODE":           "simple_protocol",
		"DB_MAIN_APPLICATION_NAME":    "erp-api",
		// analytics: a URL, a password file and replicas.
		"DB_ANALYTICS_URL":           "postgres://reader@analytics:5432/dw?sslmode=disable",
		"DB_ANALYTICS_PASSWORD_FILE": pwFile,
		"DB_ANALYTICS_REPLICA_URLS":  "postgres://reader@r1/dw, postgres://reader:r2-secret@r2/dw",
		// analytics: the replicas' lag bound, token wait and probe interval.
		"DB_ANALYTICS_REPLICA_MAX_LAG":        "2s",
		"DB_ANALYTICS_REPLICA_TOKEN_WAIT":     "50ms",
		"DB_ANALYTICS_REPLICA_PROBE_INTERVAL": "250ms",
		// analytics: a schema owner for migrations.
		"DB_ANALYTICS_MIGRATE_URL":           "postgres://owner@analytics:5432/dw?sslmode=disable",
		"DB_ANALYTICS_MIGRATE_PASSWORD_FILE": pwFile,
	}
	cfg, err := LoadConfig(environ)
	require.NoError(t, err)

	require.Equal(t, []string{"main", "analytics"}, cfg.Names)
	require.Equal(t, "info", cfg.LogLevel)
	require.Equal(t, 2*time.Second, cfg.SlowQuery)
	require.True(t, cfg.LogParams)
	require.Len(t, cfg.Databases, 2)

	main := cfg.Databases[0]
	main.urlVar = ""
	require.Equal(t, DatabaseConfig{
		Name: "main", Host: "db.internal", Port: 6432, User: "app", Password: "main-secret",
		DBName: "erp", SSLMode: "require",
		PoolMaxConns: 20, PoolMinConns: 2, MaxConnLifetime: 2 * time.Hour, MaxConnIdleTime: 5 * time.Minute,
		HealthCheckPeriod: 30 * time.Second, ConnectTimeout: 3 * time.Second, ConnectRetries: 7,
		ConnectBackoff: 100 * time.Millisecond, ConnectBackoffMax: 2 * time.Second,
		StatementTimeout: 30 * time.Second, LockTimeout: 2 * time.Second, IdleInTxTimeout: time.Minute,
		ExecMode: "simple_protocol", ApplicationName: "erp-api",
		ReplicaMaxLag: 5 * time.Second, ReplicaTokenWait: 200 * time.Millisecond, ReplicaProbeInterval: time.Second,
	}, main)

	an := cfg.Databases[1]
	require.Equal(t, "analytics", an.Name)
	require.Equal(t, "postgres://reader@analytics:5432/dw?sslmode=disable", an.URL)
	require.Equal(t, "file-secret", an.Password, "the trailing newline is trimmed")
	require.Equal(t, pwFile, an.PasswordFile)
	require.Equal(t, []string{"postgres://reader@r1/dw", "postgres://reader:r2-secret@r2/dw"}, an.ReplicaURLs)
	require.Equal(t, []time.Duration{2 * time.Second, 50 * time.Millisecond, 250 * time.Millisecond},
		[]time.Duration{an.ReplicaMaxLag, an.ReplicaTokenWait, an.ReplicaProbeInterval})
	require.Equal(t, "postgres://owner@analytics:5432/dw?sslmode=disable", an.MigrateURL)
	require.Equal(t, "file-secret", an.migratePassword)

	// Every variable the provider knows was set above: a new one needs a line here.
	var used []string
	for k := range environ {
		used = append(used, strings.Replace(strings.Replace(k, "DB_MAIN_", "DB_<NAME>_", 1), "DB_ANALYTICS_", "DB_<NAME>_", 1))
	}
	used = append(used, "DATABASE_URL") // covered by TestLoadConfigDatabaseURLIsTheMainShortcut
	for _, v := range EnvVars() {
		require.Contains(t, used, v, "variable %s is not exercised by this test", v)
	}

	// The pool configurations carry the settings, and pgx never sees a password in a string.
	pc, err := cfg.Databases[0].poolConfig(-1)
	require.NoError(t, err)
	require.Equal(t, "db.internal", pc.ConnConfig.Host)
	require.Equal(t, uint16(6432), pc.ConnConfig.Port)
	require.Equal(t, "app", pc.ConnConfig.User)
	require.Equal(t, "main-secret", pc.ConnConfig.Password)
	require.Equal(t, "erp", pc.ConnConfig.Database)
	require.NotContains(t, pc.ConnString(), "main-secret")
	require.Equal(t, int32(20), pc.MaxConns)
	require.Equal(t, int32(2), pc.MinConns)
	require.Equal(t, 2*time.Hour, pc.MaxConnLifetime)
	require.Equal(t, 5*time.Minute, pc.MaxConnIdleTime)
	require.Equal(t, 30*time.Second, pc.HealthCheckPeriod)
	require.Equal(t, 3*time.Second, pc.ConnConfig.ConnectTimeout)
	require.Equal(t, pgx.QueryExecModeSimpleProtocol, pc.ConnConfig.DefaultQueryExecMode)
	require.Equal(t, map[string]string{
		"statement_timeout":                   "30000",
		"lock_timeout":                        "2000",
		"idle_in_transaction_session_timeout": "60000",
		"application_name":                    "erp-api",
	}, pc.ConnConfig.RuntimeParams)

	pc, err = cfg.Databases[1].poolConfig(-1)
	require.NoError(t, err)
	require.Equal(t, "file-secret", pc.ConnConfig.Password)
	require.NotContains(t, pc.ConnString(), "file-secret")
	replica, err := cfg.Databases[1].poolConfig(0)
	require.NoError(t, err)
	require.Equal(t, "r1", replica.ConnConfig.Host)
	require.Equal(t, "file-secret", replica.ConnConfig.Password, "a replica URL without a password uses the database's")
	replica, err = cfg.Databases[1].poolConfig(1)
	require.NoError(t, err)
	require.Equal(t, "r2-secret", replica.ConnConfig.Password)
	require.NotContains(t, replica.ConnString(), "r2-secret")
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(map[string]string{})
	require.NoError(t, err)
	require.Equal(t, []string{"main"}, cfg.Names)
	require.Equal(t, "warn", cfg.LogLevel)
	require.Equal(t, 500*time.Millisecond, cfg.SlowQuery)
	require.False(t, cfg.LogParams)

	db := cfg.Databases[0]
	require.Equal(t, "localhost", db.Host)
	require.Equal(t, 5432, db.Port)
	require.Equal(t, "postgres", db.User)
	require.Equal(t, "prefer", db.SSLMode)
	require.Equal(t, 10, db.PoolMaxConns)
	require.Equal(t, 5*time.Second, db.ConnectTimeout)
	require.Equal(t, 5, db.ConnectRetries)
	require.Equal(t, "cache_statement", db.ExecMode)

	pc, err := db.poolConfig(-1)
	require.NoError(t, err)
	require.Equal(t, "postgres", pc.ConnConfig.Database, "DBNAME defaults to the user name")
	require.Equal(t, pgx.QueryExecModeCacheStatement, pc.ConnConfig.DefaultQueryExecMode)
	require.Equal(t, filepath.Base(os.Args[0]), pc.ConnConfig.RuntimeParams["application_name"])
	require.NotContains(t, pc.ConnConfig.RuntimeParams, "statement_timeout", "0 keeps the server's setting")
}

func TestLoadConfigDatabaseURLIsTheMainShortcut(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(map[string]string{"DATABASE_URL": "postgres://u@h1/d1"})
	require.NoError(t, err)
	require.Equal(t, "postgres://u@h1/d1", cfg.Databases[0].URL)

	cfg, err = LoadConfig(map[string]string{"DATABASE_URL": "postgres://u@h1/d1", "DB_MAIN_URL": "postgres://u@h2/d2"})
	require.NoError(t, err)
	require.Equal(t, "postgres://u@h2/d2", cfg.Databases[0].URL, "DB_MAIN_URL wins")

	_, err = LoadConfig(map[string]string{"DATABASE_URL": "postgres://u@h1/d1", "DB_NAMES": "analytics"})
	require.ErrorContains(t, err, `DATABASE_URL: is set but DB_NAMES (analytics) has no "main"`)

	_, err = LoadConfig(map[string]string{"DATABASE_URL": "postgres://u@h1/d1", "DB_MAIN_HOST": "h2"})
	require.ErrorContains(t, err, "DB_MAIN_HOST: cannot be combined with DATABASE_URL")
}

func TestLoadConfigExecModes(t *testing.T) {
	t.Parallel()
	for _, m := range execmode.All() {
		cfg, err := LoadConfig(map[string]string{"DB_MAIN_EXEC_MODE": m.Name})
		require.NoError(t, err)
		pc, err := cfg.Databases[0].poolConfig(primaryTarget)
		require.NoError(t, err)
		require.Equal(t, m.Mode, pc.ConnConfig.DefaultQueryExecMode, m.Name)
	}
}

func TestLoadConfigReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	_, err := LoadConfig(map[string]string{
		"DB_NAMES":                    "main,analytics,bad-name",
		"DB_LOG_LEVEL":                "loud",
		"DB_SLOW_QUERY":               "soon",
		"DB_LOG_PARAMS":               "maybe",
		"DB_MAIN_POOL_MAX_CONNS":      "0",
		"DB_MAIN_POOL_MIN_CONNS":      "-1",
		"DB_MAIN_SSLMODE":             "bogus",
		"DB_MAIN_PORT":                "70000",
		"DB_MAIN_CONNECT_TIMEOUT":     "0s",
		"DB_MAIN_CONNECT_RETRIES":     "many",
		"DB_MAIN_STATEMENT_TIMEOUT":   "-1s",
		"DB_MAIN_EXEC_MODE":           "turbo",
		"DB_MAIN_PASSWORD":            "p1-secret",
		"DB_MAIN_PASSWORD_FILE":       "/nonexistent",
		"DB_ANALYTICS_URL":            "mysql://x",
		"DB_ANALYTICS_POOL_MAX_CONNS": "4",
		"DB_ANALYTICS_POOL_MIN_CONNS": "5",
		"DB_ANALYTICS_LOCK_TIMEOUT":   "1µs",
		"DB_ANALYTICS_REPLICA_URLS":   "postgres://u:p@ss-secret@h/db",
	})
	require.ErrorIs(t, err, ErrConfig)
	lines := strings.Split(err.Error(), "\n")
	require.Equal(t, "invalid database configuration:", lines[0])
	require.ElementsMatch(t, []string{
		`DB_SLOW_QUERY: must be a duration such as 5s, 250ms or 1m30s, got "soon"`,
		`DB_LOG_PARAMS: must be true or false, got "maybe"`,
		`DB_LOG_LEVEL: one of trace, debug, info, warn, error, none; got "loud"`,
		`DB_NAMES: each name must be a letter followed by letters, digits or _; got "bad-name"`,
		`DB_MAIN_CONNECT_RETRIES: must be an integer, got "many"`,
		`DB_MAIN_PASSWORD_FILE: set either DB_MAIN_PASSWORD or DB_MAIN_PASSWORD_FILE, not both`,
		`DB_MAIN_PORT: must be between 1 and 65535, got 70000`,
		`DB_MAIN_SSLMODE: one of disable, allow, prefer, require, verify-ca, verify-full; got bogus`,
		`DB_MAIN_POOL_MAX_CONNS: must be at least 1, got 0`,
		`DB_MAIN_POOL_MIN_CONNS: must not be negative, got -1`,
		`DB_MAIN_CONNECT_TIMEOUT: must be positive, got 0s`,
		`DB_MAIN_STATEMENT_TIMEOUT: must not be negative (0 disables), got -1s`,
		`DB_MAIN_EXEC_MODE: one of cache_statement, cache_describe, describe_exec, exec, simple_protocol; got turbo`,
		`DB_ANALYTICS_URL: must be a postgres:// or postgresql:// URL (key=value strings are not accepted)`,
		`DB_ANALYTICS_REPLICA_URLS[0]: has an unencoded "@" in the user name or password; percent-encode it as %40 (and "/" as %2F, "%" as %25)`,
		`DB_ANALYTICS_POOL_MIN_CONNS: must be at most DB_ANALYTICS_POOL_MAX_CONNS (4), got 5`,
		`DB_ANALYTICS_LOCK_TIMEOUT: must be 0 or at least 1ms, got 1µs`,
	}, lines[1:])
	require.NotContains(t, err.Error(), "secret")
}

func TestLoadConfigPasswordFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, env, want string
	}{
		{name: "a trailing newline is trimmed", content: "pw-from-file\n", want: "pw-from-file"},
		{name: "a trailing CRLF is trimmed", content: "pw-from-file\r\n", want: "pw-from-file"},
		{name: "inner spaces are kept", content: " pw with spaces ", want: " pw with spaces "},
		{name: "an empty file is an error", content: "\n", env: "DB_MAIN_PASSWORD_FILE: file "},
		{name: "a missing file is an error", env: "DB_MAIN_PASSWORD_FILE: read password file: open "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if tc.content != "" {
				require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))
			}
			cfg, err := LoadConfig(map[string]string{"DB_MAIN_PASSWORD_FILE": path})
			if tc.env != "" {
				require.ErrorContains(t, err, tc.env)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.Databases[0].Password)
		})
	}
}

func TestLoadConfigURLRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		environ map[string]string
		problem string
	}{
		{"an unencoded @ in the password is rejected with a hint",
			map[string]string{"DB_MAIN_URL": "postgres://app:pa@ss-secret@db/erp"}, `DB_MAIN_URL: has an unencoded "@"`},
		{"a bad percent-escape in the password is rejected",
			map[string]string{"DB_MAIN_URL": "postgres://app:pa%zzsecret@db/erp"}, `DB_MAIN_URL: has an invalid percent-escape in the password`},
		{"a password in both user info and parameter is rejected",
			map[string]string{"DB_MAIN_URL": "postgres://app:one-secret@db/erp?password=two-secret"}, "DB_MAIN_URL: sets a password twice"},
		{"a URL with a password and PASSWORD is rejected",
			map[string]string{"DB_MAIN_URL": "postgres://app:one-secret@db/erp", "DB_MAIN_PASSWORD": "two-secret"}, "DB_MAIN_PASSWORD: DB_MAIN_URL already has a password"},
		{"a URL and discrete settings are rejected",
			map[string]string{"DB_MAIN_URL": "postgres://app@db/erp", "DB_MAIN_PORT": "5433"}, "DB_MAIN_PORT: cannot be combined with DB_MAIN_URL"},
		{"a URL pgx cannot parse is rejected with pgx's reason",
			map[string]string{"DB_MAIN_URL": "postgres://app:pw-secret@db:abc/erp"}, "DB_MAIN_URL: cannot parse `postgres://app@db:abc/erp`: invalid port"},
		{"a replica URL with a bad sslmode is rejected",
			map[string]string{"DB_MAIN_REPLICA_URLS": "postgres://app:pw-secret@r1/erp?sslmode=bogus"}, "DB_MAIN_REPLICA_URLS[0]: cannot parse `postgres://app@r1/erp?sslmode=bogus`: failed to configure TLS (sslmode is invalid)"},
		{"overlapping names are rejected",
			map[string]string{"DB_NAMES": "main,main_pool"}, `DB_NAMES: names "main" and "main_pool" overlap`},
		{"a repeated name is rejected",
			map[string]string{"DB_NAMES": "main,MAIN"}, `DB_NAMES: lists "main" twice`},
		{"an empty list is rejected",
			map[string]string{"DB_NAMES": " , "}, "DB_NAMES: must name at least one database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(tc.environ)
			require.ErrorIs(t, err, ErrConfig)
			require.ErrorContains(t, err, tc.problem)
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestConfigNeverPrintsPasswords(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("file-secret\n"), 0o600))
	cfg, err := LoadConfig(map[string]string{
		"DB_NAMES":                   "main,analytics,reporting",
		"DATABASE_URL":               "postgres://app:url-secret@db/erp",
		"DB_ANALYTICS_PASSWORD":      "plain-secret",
		"DB_ANALYTICS_REPLICA_URLS":  "postgres://r:replica-secret@r1/dw",
		"DB_REPORTING_PASSWORD_FILE": pwFile,
	})
	require.NoError(t, err)

	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "cfg", cfg, "db", cfg.Databases[1])
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "cfg", cfg, "db", cfg.Databases[1])
	marshalled, err := json.Marshal(cfg)
	require.NoError(t, err)
	outputs := map[string]string{
		"%v":            fmt.Sprintf("%v", cfg),
		"%+v":           fmt.Sprintf("%+v", cfg),
		"%#v":           fmt.Sprintf("%#v", cfg),
		"%+v pointer":   fmt.Sprintf("%+v", &cfg),
		"%+v db":        fmt.Sprintf("%+v", cfg.Databases[1]),
		"%#v db":        fmt.Sprintf("%#v", cfg.Databases[2]),
		"slog text":     text.String(),
		"slog json":     js.String(),
		"json":          string(marshalled),
		"%+v databases": fmt.Sprintf("%+v", cfg.Databases),
	}
	for name, out := range outputs {
		require.NotContains(t, out, "secret", name)
		require.Contains(t, out, "xxxxx", name)
	}
	require.Contains(t, outputs["%#v"], "provider.Config{")
	require.Contains(t, outputs["%#v db"], "provider.DatabaseConfig{")
	require.Contains(t, outputs["%+v"], "postgres://app:xxxxx@db/erp")
	require.Contains(t, outputs["%+v db"], "postgres://r:xxxxx@r1/dw", "replica URLs are redacted, not dropped")
}

func TestEnvVarsListsBothStructs(t *testing.T) {
	t.Parallel()
	vars := EnvVars()
	require.Contains(t, vars, "DATABASE_URL")
	require.Contains(t, vars, "DB_NAMES")
	require.Contains(t, vars, "DB_<NAME>_POOL_MAX_CONNS")
	require.False(t, slices.Contains(vars, "DB_<NAME>_NAME"), "Name is not read from the environment")
}

func TestLoadConfigFindsIgnoredVariables(t *testing.T) {
	t.Parallel()
	environ := map[string]string{
		"DB_NAMES":               "main",
		"DB_MAIN_POOL_MAXCONNS":  "5",
		"DB_ANALYTICS_URL":       "postgres://u@h/d",
		"DB_MAIN_POOL_MAX_CONNS": "5",
		"DB_LOG_LEVEL":           "info",
		"DBX_MAIN_URL":           "postgres://u@h/d",
	}
	_, ignored, err := loadConfig(environ)
	require.NoError(t, err)
	require.Equal(t, []ignoredVar{
		{"DB_ANALYTICS_URL", "analytics is not in DB_NAMES"},
		{"DB_MAIN_POOL_MAXCONNS", "not a variable of database main"},
	}, ignored)
}

func TestMigrationConnConfig(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "owner-pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("owner-secret\n"), 0o600))
	app := map[string]string{
		"DB_MAIN_HOST": "db.internal", "DB_MAIN_USER": "app", "DB_MAIN_PASSWORD": "app-secret",
		"DB_MAIN_DBNAME": "erp", "DB_MAIN_STATEMENT_TIMEOUT": "2s", "DB_MAIN_LOCK_TIMEOUT": "1s",
		"DB_MAIN_IDLE_IN_TX_TIMEOUT": "5s", "DB_MAIN_EXEC_MODE": "exec", "DB_MAIN_CONNECT_TIMEOUT": "3s",
	}
	with := func(kv ...string) map[string]string {
		environ := maps.Clone(app)
		for i := 0; i < len(kv); i += 2 {
			environ[kv[i]] = kv[i+1]
		}
		return environ
	}

	t.Run("without MIGRATE_URL migrations connect as the application, without its timeouts", func(t *testing.T) {
		t.Parallel()
		db, err := LoadDatabase(app, "main")
		require.NoError(t, err)
		cc, err := db.MigrationConnConfig()
		require.NoError(t, err)
		require.Equal(t, []any{"db.internal", "app", "app-secret", "erp"}, []any{cc.Host, cc.User, cc.Password, cc.Database})
		require.Equal(t, pgx.QueryExecModeExec, cc.DefaultQueryExecMode)
		require.Equal(t, 3*time.Second, cc.ConnectTimeout)
		for _, p := range []string{"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"} {
			require.NotContains(t, cc.RuntimeParams, p)
		}
	})
	t.Run("MIGRATE_URL names the owner role, its password from MIGRATE_PASSWORD_FILE", func(t *testing.T) {
		t.Parallel()
		db, err := LoadDatabase(with("DB_MAIN_MIGRATE_URL", "postgres://owner@db.internal/erp", "DB_MAIN_MIGRATE_PASSWORD_FILE", pwFile), "main")
		require.NoError(t, err)
		cc, err := db.MigrationConnConfig()
		require.NoError(t, err)
		require.Equal(t, []any{"owner", "owner-secret"}, []any{cc.User, cc.Password})
		require.NotContains(t, cc.RuntimeParams, "statement_timeout")
		require.NotContains(t, fmt.Sprintf("%v %+v %#v", db, db, db), "secret")
		pc, err := db.poolConfig(primaryTarget)
		require.NoError(t, err)
		require.Equal(t, "app", pc.ConnConfig.User, "the application's pool is not the owner's")
	})
	t.Run("MIGRATE_URL's own password", func(t *testing.T) {
		t.Parallel()
		db, err := LoadDatabase(with("DB_MAIN_MIGRATE_URL", "postgres://owner:url-secret@db.internal/erp?statement_timeout=0"), "main")
		require.NoError(t, err)
		cc, err := db.MigrationConnConfig()
		require.NoError(t, err)
		require.Equal(t, "url-secret", cc.Password)
		require.Equal(t, "0", cc.RuntimeParams["statement_timeout"], "MIGRATE_URL's own parameters are kept")
	})
	t.Run("LoadDatabase rejects a bad name", func(t *testing.T) {
		t.Parallel()
		_, err := LoadDatabase(nil, "bad-name")
		require.ErrorIs(t, err, ErrConfig)
		require.EqualError(t, err, `invalid database configuration: database name "bad-name" must be a letter followed by letters, digits or _ (as in DB_NAMES)`)
	})
	t.Run("LoadDatabase reads a name DB_NAMES does not list and DATABASE_URL for main", func(t *testing.T) {
		t.Parallel()
		db, err := LoadDatabase(map[string]string{"DB_NAMES": "main", "DB_ANALYTICS_URL": "postgres://u@h/dw"}, "Analytics")
		require.NoError(t, err)
		require.Equal(t, "analytics", db.Name)
		require.Equal(t, "postgres://u@h/dw", db.URL)
		db, err = LoadDatabase(map[string]string{"DB_NAMES": "analytics", "DATABASE_URL": "postgres://u@h/erp"}, "main")
		require.NoError(t, err)
		require.Equal(t, "postgres://u@h/erp", db.URL)
	})
	for _, tc := range []struct {
		name string
		env  map[string]string
		db   string
		want string
	}{

		{"MIGRATE_URL not a URL", with("DB_MAIN_MIGRATE_URL", "host=x"), "main",
			"DB_MAIN_MIGRATE_URL: must be a postgres:// or postgresql:// URL (key=value strings are not accepted)"},
		{"two passwords for the owner", with("DB_MAIN_MIGRATE_URL", "postgres://o:p-secret@h/d", "DB_MAIN_MIGRATE_PASSWORD_FILE", pwFile), "main",
			"DB_MAIN_MIGRATE_PASSWORD_FILE: DB_MAIN_MIGRATE_URL already has a password; set it in one place"},
		{"an owner password without MIGRATE_URL", with("DB_MAIN_MIGRATE_PASSWORD_FILE", pwFile), "main",
			"DB_MAIN_MIGRATE_PASSWORD_FILE: is the password of DB_MAIN_MIGRATE_URL's role; set DB_MAIN_MIGRATE_URL too"},
	} {
		t.Run(tc.name+" is an error naming the variable", func(t *testing.T) {
			t.Parallel()
			_, err := LoadDatabase(tc.env, tc.db)
			require.ErrorIs(t, err, ErrConfig)
			require.EqualError(t, err, "invalid database configuration:\n"+tc.want)
		})
	}
}

func TestMigrateVariablesAreNotIgnored(t *testing.T) {
	t.Parallel()
	_, ignored, err := loadConfig(map[string]string{"DB_MAIN_MIGRATE_URL": "postgres://owner@h/d"})
	require.NoError(t, err)
	require.Empty(t, ignored)
}
