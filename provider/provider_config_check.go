package provider

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cortexerp/datalayer/internal/execmode"
)

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
		} else if pw, err := readPasswordFile(db.PasswordFile); err != nil {
			add("PASSWORD_FILE", "%v", err)
		} else {
			db.Password = pw
		}
	}

	// The schema owner's connection, for migrations.
	if db.MigrateURL != "" {
		if u, err := parseURL(db.MigrateURL); err != nil {
			add("MIGRATE_URL", "%v", err)
		} else if u.Password != "" && db.MigratePasswordFile != "" {
			add("MIGRATE_PASSWORD_FILE", "%sMIGRATE_URL already has a password; set it in one place", prefix)
		}
	}
	if db.MigratePasswordFile != "" {
		if db.MigrateURL == "" {
			add("MIGRATE_PASSWORD_FILE", "is the password of %sMIGRATE_URL's role; set %sMIGRATE_URL too", prefix, prefix)
		} else if pw, err := readPasswordFile(db.MigratePasswordFile); err != nil {
			add("MIGRATE_PASSWORD_FILE", "%v", err)
		} else {
			db.migratePassword = pw
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
	switch {
	case bad[prefix+"REPLICA_MAX_LAG"]:
	case db.ReplicaMaxLag <= 0:
		add("REPLICA_MAX_LAG", "must be positive, got %s", db.ReplicaMaxLag)
	case !bad[prefix+"REPLICA_PROBE_INTERVAL"] && db.ReplicaMaxLag < db.ReplicaProbeInterval:
		add("REPLICA_MAX_LAG", "must be at least %sREPLICA_PROBE_INTERVAL (%s): lag is known to within one probe, got %s", prefix, db.ReplicaProbeInterval, db.ReplicaMaxLag)
	}
	if !bad[prefix+"REPLICA_TOKEN_WAIT"] && db.ReplicaTokenWait < 0 {
		add("REPLICA_TOKEN_WAIT", "must not be negative (0 never waits), got %s", db.ReplicaTokenWait)
	}
	if !bad[prefix+"REPLICA_PROBE_INTERVAL"] && (db.ReplicaProbeInterval < 10*time.Millisecond || db.ReplicaProbeInterval > time.Minute) {
		add("REPLICA_PROBE_INTERVAL", "must be within 10ms and 1m, got %s", db.ReplicaProbeInterval)
	}
	if !bad[prefix+"CONNECT_RETRIES"] && (db.ConnectRetries < 0 || db.ConnectRetries > 1000) {
		add("CONNECT_RETRIES", "must be between 0 and 1000, got %d", db.ConnectRetries)
	}
	db.ExecMode = strings.ToLower(strings.TrimSpace(db.ExecMode))
	if _, ok := execmode.Parse(db.ExecMode); !ok {
		add("EXEC_MODE", "one of %s; got %s", strings.Join(execmode.Names(), ", "), db.ExecMode)
	}

	// pgx's own parse catches the rest (a bad port, an unknown sslmode).
	if len(*problems) == before {
		for i := migrateTarget; i < len(db.ReplicaURLs); i++ {
			if i == migrateTarget && db.MigrateURL == "" {
				continue
			}
			if _, err := db.poolConfig(i); err != nil {
				*problems = append(*problems, err)
			}
		}
	}
	return db
}

// readPasswordFile returns the password in file, its trailing newline trimmed.
func readPasswordFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("file %s is empty", file)
	}
	return pw, nil
}
