package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cortexerp/datalayer/internal/secret"
)

// Open connects to the database at url (a postgres:// URL or key=value
// string) and returns a Migrator for the migrations at the root of fsys;
// see [OpenConfig]. Errors never contain the password.
func Open(ctx context.Context, url string, fsys fs.FS, opts ...Option) (*Migrator, error) {
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("open: database URL is empty")
	}
	// pgx is handed the URL without its password, so that no error of its
	// own can quote it.
	cs, err := secret.Parse(url)
	if err != nil {
		return nil, fmt.Errorf("open: %w", invalidURL(err))
	}
	pc, err := pgx.ParseConfig(cs.WithoutPassword())
	if err != nil {
		return nil, fmt.Errorf("open: %w", invalidURL(secret.Error(err)))
	}
	if cs.Password != "" {
		pc.Password = cs.Password
	}
	return OpenConfig(ctx, pc, fsys, opts...)
}

// OpenConfig connects with a copy of cc (built by pgx.ParseConfig, or by
// provider's DatabaseConfig.MigrationConnConfig) and returns a Migrator for
// the migrations at the root of fsys. Every connection it opens gets
// lock_timeout (WithLockTimeout) and, unless cc sets a ConnectTimeout, a
// bounded connect (WithConnectTimeout). It checks the connection before
// returning. Errors never contain the password. Close closes the
// connection.
func OpenConfig(ctx context.Context, cc *pgx.ConnConfig, fsys fs.FS, opts ...Option) (*Migrator, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if cc == nil {
		return nil, errors.New("open: connection config must not be nil")
	}
	pc := cc.Copy()
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = cfg.connectTimeout
	}
	tr := &stmtTracer{}
	if pc.Tracer == nil {
		pc.Tracer = tr
	}
	if cfg.tableLock {
		// PgBouncer in transaction mode before 1.21 loses prepared statements.
		pc.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	var dbOpts []stdlib.OptionOpenDB
	if ms := cfg.lockTimeout.Milliseconds(); ms > 0 {
		set := fmt.Sprintf("SET lock_timeout = %d", ms)
		dbOpts = append(dbOpts, stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
			if _, err := c.Exec(ctx, set); err != nil {
				return fmt.Errorf("set lock_timeout: %w", err)
			}
			return nil
		}))
	}
	db := stdlib.OpenDB(*pc, dbOpts...)
	if cfg.tableLock {
		// One connection runs the migrations; the table lock and its
		// heartbeat use others.
		db.SetMaxOpenConns(3)
	} else {
		// The session lock, the migrations and the version table share one
		// connection; a single one also keeps lock_timeout-free pools out.
		db.SetMaxOpenConns(1)
	}
	m, err := newMigrator(db, fsys, cfg, true, tr)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open: connect: %w", secret.Error(err))
	}
	return m, nil
}

// stmtTracer remembers the statement that failed last, so an error can name
// the line of the migration file. It is safe for concurrent use.
type stmtTracer struct {
	mu     sync.Mutex
	sql    string
	failed error
}

var _ pgx.QueryTracer = (*stmtTracer)(nil)

type stmtKey struct{}

func (t *stmtTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, stmtKey{}, d.SQL)
}

func (t *stmtTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	if d.Err == nil {
		return
	}
	s, _ := ctx.Value(stmtKey{}).(string)
	t.mu.Lock()
	t.sql, t.failed = s, d.Err
	t.mu.Unlock()
}

// failedStatement returns the SQL that produced pgErr, or "".
func (t *stmtTracer) failedStatement(pgErr *pgconn.PgError) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var got *pgconn.PgError
	if errors.As(t.failed, &got) && got == pgErr {
		return t.sql
	}
	return ""
}

// invalidURL says what a database URL should look like.
func invalidURL(err error) error {
	return fmt.Errorf("invalid database URL (want postgres://user:password@host:port/dbname?sslmode=…, "+
		"with / ? # @ : percent-encoded in the password): %w", err)
}
