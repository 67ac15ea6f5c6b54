package migrate

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3/lock"
)

// ErrLocked reports that another migrator held the migration lock for longer
// than the lock wait (WithLockWait).
var ErrLocked = errors.New("another migration holds the migration lock")

// goose's lockers count retries across calls, so a long-lived Migrator would
// wait less and less: sessionLocker and tableLocker build a fresh goose
// locker for every acquisition and keep it for the matching release. goose
// runs one operation at a time per Provider; the mutex only guards the fields.

type sessionLocker struct {
	wait  time.Duration
	hooks *sessionHooks

	mu      sync.Mutex
	current lock.SessionLocker
	pgConn  *pgconn.PgConn // under the locked session; nil if not pgx
}

var _ lock.SessionLocker = (*sessionLocker)(nil)

func (l *sessionLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	inner, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, pollCount(l.wait)))
	if err != nil {
		return fmt.Errorf("session lock: %w", err)
	}
	l.mu.Lock()
	l.current = inner
	l.mu.Unlock()
	if err := inner.SessionLock(ctx, conn); err != nil {
		return lockError(ctx, err, l.wait, "advisory lock")
	}
	pc := pgConnOf(conn)
	l.mu.Lock()
	l.pgConn = pc
	l.mu.Unlock()
	if err := l.hooks.afterLock(ctx, conn); err != nil {
		// goose releases only locks it was told were taken.
		return errors.Join(err, l.unlock(context.WithoutCancel(ctx), conn))
	}
	return nil
}

func (l *sessionLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	return errors.Join(l.hooks.beforeUnlock(ctx, conn), l.unlock(ctx, conn))
}

func (l *sessionLocker) unlock(ctx context.Context, conn *sql.Conn) error {
	l.mu.Lock()
	inner, pc := l.current, l.pgConn
	l.mu.Unlock()
	if inner == nil {
		return errors.New("session unlock: not locked")
	}
	if err := inner.SessionUnlock(ctx, conn); err != nil {
		if pc != nil && pc.IsClosed() {
			// An interrupted query (a cancelled context: SIGTERM in
			// cmd/migrate) makes pgx close the connection in the
			// background: it sends the server a cancel request, then
			// Terminate, then waits for the server to hang up, which it
			// does only after rolling back and releasing the session's
			// locks. Until then the server still runs the migration's
			// statement and holds the lock. Wait for that (pgx bounds it by
			// 15s), so the lock is free when Up returns and a process
			// that exits then leaves nothing running behind it.
			<-pc.CleanupDone()
		}
		return fmt.Errorf("release advisory lock: %w", err)
	}
	return nil
}

// pgConnOf returns the pgx connection under conn, or nil if conn is not one
// of pgx's database/sql driver.
func pgConnOf(conn *sql.Conn) *pgconn.PgConn {
	var pc *pgconn.PgConn
	_ = conn.Raw(func(dc any) error { // the callback never fails
		if c, ok := dc.(*stdlib.Conn); ok {
			pc = c.Conn().PgConn()
		}
		return nil
	})
	return pc
}

type tableLocker struct {
	wait   time.Duration
	logger *slog.Logger
	hooks  *sessionHooks

	mu      sync.Mutex
	current lock.Locker
}

var _ lock.Locker = (*tableLocker)(nil)

func (l *tableLocker) Lock(ctx context.Context, db *sql.DB) error {
	inner, err := lock.NewPostgresTableLocker(
		lock.WithTableLockTimeout(time.Second, pollCount(l.wait)),
		lock.WithTableLogger(l.logger),
		// Retry while the lock is taken, not on database errors (permissions, …).
		lock.WithTableRetryPolicy(lockBusy),
	)
	if err != nil {
		return fmt.Errorf("table lock: %w", err)
	}
	l.mu.Lock()
	l.current = inner
	l.mu.Unlock()
	if err := inner.Lock(ctx, db); err != nil {
		return lockError(ctx, err, l.wait, "table lock")
	}
	if err := l.hooks.afterLock(ctx, db); err != nil {
		return errors.Join(err, l.unlock(context.WithoutCancel(ctx), db))
	}
	return nil
}

func (l *tableLocker) Unlock(ctx context.Context, db *sql.DB) error {
	return errors.Join(l.hooks.beforeUnlock(ctx, db), l.unlock(ctx, db))
}

func (l *tableLocker) unlock(ctx context.Context, db *sql.DB) error {
	l.mu.Lock()
	inner := l.current
	l.mu.Unlock()
	if inner == nil {
		return errors.New("table unlock: not locked")
	}
	if err := inner.Unlock(ctx, db); err != nil {
		return fmt.Errorf("release table lock: %w", err)
	}
	return nil
}

// pollCount is how many one-second polls make up wait.
func pollCount(wait time.Duration) uint64 {
	return uint64(max(1, math.Ceil(wait.Seconds())))
}

// lockError tells "still held by someone else after wait" (ErrLocked) from
// a database, network or context error.
func lockError(ctx context.Context, err error, wait time.Duration, kind string) error {
	if ctx.Err() != nil || !lockBusy(err) {
		return fmt.Errorf("acquire %s: %w", kind, err)
	}
	return &lockedError{kind: kind, wait: wait}
}

// lockedError is an ErrLocked that says which lock and for how long.
type lockedError struct {
	kind string
	wait time.Duration
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("%v (%s; waited %v): let it finish or raise the lock wait (WithLockWait, -lock-wait)",
		ErrLocked, e.kind, e.wait.Round(time.Second))
}

func (e *lockedError) Is(target error) bool { return target == ErrLocked }

var plainErrorType = reflect.TypeOf(errors.New(""))

// lockBusy reports whether a goose locker failed only because the lock is
// taken: goose reports that with a plain message ("failed to acquire lock",
// "already held by another instance"), while database, network and context
// failures end in an error of their own type.
func lockBusy(err error) bool {
	for _, notBusy := range []error{
		context.Canceled, context.DeadlineExceeded, driver.ErrBadConn, sql.ErrConnDone,
		pgconn.ErrConnClosed, io.EOF, io.ErrUnexpectedEOF,
	} {
		if errors.Is(err, notBusy) {
			return false
		}
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return reflect.TypeOf(err) == plainErrorType
		}
		err = next
	}
}
