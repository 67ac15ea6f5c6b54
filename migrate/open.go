package migrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Open connects to the database at url (a postgres:// URL or key=value
// string) and returns a Migrator for the migrations at the root of fsys.
// Every connection it opens gets lock_timeout (WithLockTimeout) and, unless
// the URL sets connect_timeout, a bounded connect (WithConnectTimeout). It
// checks the connection before returning. Errors never contain the password.
// Close closes the connection.
func Open(ctx context.Context, url string, fsys fs.FS, opts ...Option) (*Migrator, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("open: database URL is empty")
	}
	pc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open: %w", redactParseError(url, err))
	}
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
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			err = redactConnectError(err, ce)
		}
		return nil, fmt.Errorf("open: connect: %w", err)
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

// redactedError carries a scrubbed message. It unwraps only to what cannot
// hold the password: a server error or a context error.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

func safeCause(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return pgErr
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return context.Canceled
	}
	return nil
}

// redactParseError rewrites a pgx.ParseConfig error: pgx masks passwords
// only on a best-effort basis and keeps the raw string in ConnString.
func redactParseError(raw string, err error) error {
	msg := err.Error()
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		// "cannot parse `<redacted string>`: <reason>": keep the reason only.
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			msg = msg[i+3:]
		}
	}
	return &redactedError{
		msg: "invalid database URL (want postgres://user:password@host:port/dbname?sslmode=…, " +
			"with / ? # @ : percent-encoded in the password; value not shown): " + scrub(msg, raw, nil),
		cause: safeCause(err),
	}
}

// redactConnectError rewrites a connect error without its config.
func redactConnectError(err error, ce *pgconn.ConnectError) error {
	var pw []string
	if ce.Config != nil {
		pw = append(pw, ce.Config.Password)
	}
	return &redactedError{msg: scrub(err.Error(), "", pw), cause: safeCause(err)}
}

var (
	urlUserinfo = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://(.*)@`)
	kvPassword  = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)
	secretSplit = regexp.MustCompile(`[/?#@:]`)
)

// scrub replaces in msg every password it can find in raw, and the given
// passwords, with "xxxxx".
func scrub(msg, raw string, passwords []string) string {
	secrets := append([]string(nil), passwords...)
	if raw != "" {
		secrets = append(secrets, raw)
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				secrets = append(secrets, p)
			}
		}
		if m := urlUserinfo.FindStringSubmatch(raw); m != nil {
			if _, pw, ok := strings.Cut(m[1], ":"); ok {
				secrets = append(secrets, pw)
				if dec, err := url.PathUnescape(pw); err == nil {
					secrets = append(secrets, dec)
				}
				// A malformed URL may get split anywhere inside the password.
				for _, piece := range secretSplit.Split(pw, -1) {
					if len(piece) >= 3 {
						secrets = append(secrets, piece)
					}
				}
			}
		}
		for _, m := range kvPassword.FindAllStringSubmatch(raw, -1) {
			secrets = append(secrets, strings.Trim(m[1], "'"))
		}
	}
	// Longest first, so a piece never leaves the rest of a longer secret.
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}
