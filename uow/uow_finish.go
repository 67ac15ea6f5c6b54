package uow

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgxpool"
)

// finishNested ends nested level l: it sends l's deferred statements, then
// queues RELEASE (ferr nil and the transaction can go on) or rolls back to
// l's savepoint, and runs l's rollback hooks on failure.
func (t *txn) finishNested(ctx context.Context, l *level, ferr error) error {
	if t.settle() && ferr == nil {
		ferr = errUnclosed
	}
	if ferr == nil {
		// A nested call's deferred statements go before it returns, so that
		// their errors are its own.
		t.mu.Lock()
		queued := t.hasDeferredLocked(l)
		t.mu.Unlock()
		if queued {
			ferr = t.flush(ctx, l)
		}
	}
	t.mu.Lock()
	if ferr == nil && l.lost != nil {
		ferr = fmt.Errorf("%w: %w", ErrRollbackOnly, l.lost)
	}
	if ferr == nil {
		if cause := t.failedLocked(); cause != nil {
			ferr = fmt.Errorf("%w: %w", ErrRollbackOnly, cause)
			t.doomLocked(cause)
		}
	}
	t.endLevelLocked(l)
	parent := l.parent
	if ferr == nil {
		if l.hasSavepoint {
			t.dropPendingLocked(l, true)
			t.pending = append(t.pending, cmd{kind: cmdRelease, sql: releaseSQL(l.depth), level: l})
			t.restoreSettingsLocked(l)
		}
		parent.afterCommit = append(parent.afterCommit, l.afterCommit...)
		parent.afterRollback = append(parent.afterRollback, l.afterRollback...)
		t.mu.Unlock()
		return nil
	}
	hooks := l.afterRollback
	rollbackTo := l.hasSavepoint && t.conn != nil && !t.conn.Conn().IsClosed()
	if !l.hasSavepoint && t.conn != nil && !t.conn.Conn().IsClosed() && t.conn.Conn().PgConn().TxStatus() == 'E' {
		t.doomLocked(ferr) // failed before its savepoint existed: nothing to roll back to
	}
	t.dropPendingLocked(l, false)
	t.mu.Unlock()
	if rollbackTo {
		sp := savepointName(l.depth)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		_, err := t.conn.Conn().Exec(cctx, "ROLLBACK TO SAVEPOINT "+sp+"; RELEASE SAVEPOINT "+sp)
		cancel()
		if err != nil {
			t.mu.Lock()
			t.doomLocked(fmt.Errorf("uow: rollback to savepoint: %w", err))
			t.mu.Unlock()
		}
	}
	if isRetryable(ferr) {
		t.mu.Lock()
		t.doomLocked(ferr) // only the outermost call may replay
		t.mu.Unlock()
	}
	runRollbackHooks(t.outerCtx, hooks, ferr)
	return ferr
}

// dropPendingLocked forgets pending commands of the levels inside l: only
// their RELEASEs when l's savepoint is released (that releases them too);
// when l ends in error, all of theirs and l's own (a SAVEPOINT and
// statements still queued: rolling back undoes them, and settings, anyway).
func (t *txn) dropPendingLocked(l *level, onlyReleases bool) {
	kept := t.pending[:0]
	for _, c := range t.pending {
		inside := c.level != nil && (c.level.depth > l.depth || c.level == l && !onlyReleases)
		if inside && (c.kind == cmdRelease || !onlyReleases) {
			switch c.kind {
			case cmdSavepoint:
				c.level.savepointQueued = false
			case cmdStmt:
				t.deferred--
				t.deferredBytes -= len(c.sql) + argsSize(c.args)
			}
			continue
		}
		kept = append(kept, c)
	}
	t.pending = kept
}

// restoreSettingsLocked queues commands that give the parent back its
// settings once l's savepoint is released (SET LOCAL outlives RELEASE).
func (t *txn) restoreSettingsLocked(l *level) {
	restore := func(name string, own func(*level) string) {
		if own(l) == "" {
			return
		}
		for p := l.parent; p != nil; p = p.parent {
			if v := own(p); v != "" {
				t.pending = append(t.pending, cmd{kind: cmdSet, sql: name, value: v, level: l})
				return
			}
		}
		t.pending = append(t.pending, cmd{kind: cmdReset, sql: "SET LOCAL " + name + " TO DEFAULT", level: l})
	}
	restore("statement_timeout", func(s *level) string { return s.stmtTimeout })
	restore("lock_timeout", func(s *level) string { return s.lockTimeout })
}

var errUnclosed = errors.New("uow: fn returned with a Rows or Row still open: close every Rows and Scan every Row before returning")

// finish ends the outermost level: COMMIT when ferr is nil and the
// transaction can commit, ROLLBACK otherwise; then it returns the connection
// and runs the hooks.
func (t *txn) finish(ctx context.Context, root *level, ferr error) error {
	if t.settle() && ferr == nil {
		ferr = errUnclosed
	}
	t.mu.Lock()
	if ferr == nil && root.lost != nil {
		ferr = fmt.Errorf("%w: %w", ErrRollbackOnly, root.lost)
	}
	if ferr == nil {
		if cause := t.failedLocked(); cause != nil {
			ferr = fmt.Errorf("%w: %w", ErrRollbackOnly, cause)
		}
	}
	t.endLevelLocked(root)
	t.done = true
	conn, begun := t.conn, t.begun || t.beginQueued
	t.mu.Unlock()

	err := ferr
	if conn != nil {
		if conn.Conn().IsClosed() {
			t.mu.Lock()
			t.lost = true // before COMMIT: the server rolls back a session it lost
			t.mu.Unlock()
		}
		if begun {
			if err == nil {
				err = t.commit(ctx, conn)
				if err == nil && t.opts.captureToken != nil {
					t.captureToken(ctx, conn)
				}
			} else {
				t.rollback(ctx, conn)
			}
		}
		if t.lost && err != nil && t.pool != t.core.pool && t.core.replicas != nil {
			t.core.replicas.markDown(t.pool, err)
			t.failedOver = true
		}
		if t.readOnlyPrimary(err) {
			t.core.cfg.logger.LogAttrs(ctx, slogWarn, "uow: the primary is read-only (failed over?): its connections are dropped", attrErr(err))
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
			t.core.pool.Reset()
		}
		conn.Release()
	}
	if !begun && err == nil && t.opts.captureToken != nil {
		*t.opts.captureToken = Token{}
	}
	if err == nil {
		runCommitHooks(t.outerCtx, root.afterCommit)
	} else {
		runRollbackHooks(t.outerCtx, root.afterRollback, err)
	}
	return err
}

// rollback ends the transaction without the caller's cancellation; a
// connection it cannot clean is destroyed by the pool on Release.
func (t *txn) rollback(ctx context.Context, conn *pgxpool.Conn) {
	c := conn.Conn()
	if c.IsClosed() || c.PgConn().TxStatus() == 'I' {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if _, err := c.Exec(cctx, "ROLLBACK"); err != nil {
		t.core.cfg.logger.LogAttrs(ctx, slogWarn, "uow: rollback failed; connection discarded", attrErr(err))
		_ = c.Close(cctx)
	}
}

// readOnlyPrimary reports whether err is the primary refusing a write because
// it is read-only (SQLSTATE 25006 in a read-write unit of work on the
// primary, with no ReadOnly level inside): after a failover the server
// behind the primary's address became a standby, or was fenced. It records
// it in t.failedOver, for doOutermost's one retry.
func (t *txn) readOnlyPrimary(err error) bool {
	if sqlState(err) != pgerrcode.ReadOnlySQLTransaction || t.opts.readOnly || t.pool != t.core.pool {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failedOver = !t.nestedReadOnly
	return t.failedOver
}

// isRetryable reports whether err is one every policy retries (it reads no
// policy: DefaultRetry is a variable callers may change).
func isRetryable(err error) bool {
	return RetryPolicy{}.retryable(err)
}
