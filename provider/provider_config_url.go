package provider

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/internal/execmode"
	"github.com/cortexerp/datalayer/internal/secret"
)

// Targets of poolConfig besides the replicas' indexes.
const (
	// primaryTarget is the database's own connection (URL or HOST…).
	primaryTarget = -1
	// migrateTarget is MIGRATE_URL's connection.
	migrateTarget = -2
)

// MigrationConnConfig returns the connection settings for migrating the
// database: MIGRATE_URL's role (its password from the URL or
// MIGRATE_PASSWORD_FILE) when MIGRATE_URL is set, else the database's own
// connection (URL or HOST…, PASSWORD or PASSWORD_FILE). It keeps
// CONNECT_TIMEOUT, EXEC_MODE and APPLICATION_NAME, and leaves out
// STATEMENT_TIMEOUT and IDLE_IN_TX_TIMEOUT (meant for the application's
// queries, they would cut a long migration short) and LOCK_TIMEOUT (the
// migrator sets its own). Errors never contain the password.
func (c DatabaseConfig) MigrationConnConfig() (*pgx.ConnConfig, error) {
	target := primaryTarget
	if c.MigrateURL != "" {
		target = migrateTarget
	}
	pc, err := c.poolConfig(target)
	if err != nil {
		return nil, err
	}
	cc := pc.ConnConfig
	if target == primaryTarget {
		// MIGRATE_URL gets none of them from the variables; only its own
		// parameters count.
		for _, param := range []string{"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"} {
			delete(cc.RuntimeParams, param)
		}
	}
	return cc, nil
}

// poolConfig builds the pgxpool configuration of the primary
// (primaryTarget), of MIGRATE_URL (migrateTarget) or of replica i. Errors
// never contain the password.
func (c DatabaseConfig) poolConfig(replica int) (*pgxpool.Config, error) {
	var (
		connString string
		password   = c.Password
		source     = c.urlVar
	)
	switch {
	case replica == migrateTarget:
		source = envPrefix(c.Name) + "MIGRATE_URL"
		u, err := parseURL(c.MigrateURL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		connString, password = u.WithoutPassword(), c.migratePassword
		if u.Password != "" {
			password = u.Password
		}
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
	cc.DefaultQueryExecMode, _ = execmode.Parse(c.ExecMode) // checked by loadDatabase
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	setTimeout := func(param string, d time.Duration) {
		if d > 0 {
			cc.RuntimeParams[param] = strconv.FormatInt(d.Milliseconds(), 10)
		}
	}
	if replica != migrateTarget {
		setTimeout("statement_timeout", c.StatementTimeout)
		setTimeout("lock_timeout", c.LockTimeout)
		setTimeout("idle_in_transaction_session_timeout", c.IdleInTxTimeout)
	}
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
