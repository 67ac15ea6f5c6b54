package uow

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// cleanupTimeout bounds ROLLBACK and the commit-outcome check, which run
// without the caller's cancellation.
const cleanupTimeout = 5 * time.Second

// txn is the state of one attempt of an outermost unit of work. This file
// holds how a statement claims it (enter, claim, leave); uow_plan.go the
// commands sent ahead of statements; uow_finish.go the end of a level;
// uow_commit.go COMMIT and its outcome; uow_writebehind.go deferral.
//
// The state machine, all under mu:
//
//   - begun: false until BEGIN ran. enter plans BEGIN while begun and
//     beginQueued are false; planDone sets begun when it ran. Under
//     write-behind deferStmt may queue the plan instead (beginQueued) until
//     the next round trip carries it.
//   - pending: commands for the next round trip. finishNested adds RELEASE
//     and the settings to restore when a savepoint is released; deferStmt
//     adds deferred statements with the BEGIN and SAVEPOINTs they need;
//     enter moves pending into the plan it returns; dropPendingLocked
//     forgets what a rolled-back level (or a released one's children) left.
//   - level.needsSavepoint → savepointQueued → hasSavepoint: push starts a
//     nested level needing its savepoint; enter plans it (deferStmt queues
//     it); planDone records that it ran, or sets needsSavepoint again when the
//     plan failed first; finishNested rolls back to it or releases it.
//   - busy/open: one statement at a time (enter sets busy, leave clears it;
//     open is the result fn may leave open, closed by settle).
//   - doomed, lastErr, level.lost: why the transaction (or a level) cannot
//     commit; finish and finishNested turn them into ErrRollbackOnly.
//   - done: finish ran; every later claim returns ErrTxDone.
type txn struct {
	core     *core
	pool     *pgxpool.Pool // the pool the connection came from (primary or replica)
	opts     txOptions
	attempt  int
	outerCtx context.Context // ctx of the outermost Do, without the unit of work

	mu         sync.Mutex
	stack      []*level // active levels, outermost first
	stackBuf   [4]*level
	root       level
	busy       bool       // a statement runs or its result is open
	open       openResult // the result fn may leave open, closed by settle
	idle       *sync.Cond // on mu, created by settle: signalled when busy or open change
	done       bool
	conn       *pgxpool.Conn
	begun      bool   // BEGIN ran
	pending    []cmd  // deferred commands for the next round trip
	savepoints int    // savepoints created in this transaction
	xid        uint64 // the transaction id (xid8) the probe read; 0 until then
	unprobed   bool   // statements ran since xid was last probed
	doomed     error  // cause that makes the transaction rollback-only
	lastErr    error  // last statement error
	lost       bool   // set by finish: the connection broke (or none could be had) before COMMIT was sent

	nestedReadOnly bool // a nested ReadOnly level ran: a 25006 may be its own
	failedOver     bool // set by finish: the primary refused a write as read-only (readOnlyPrimary), or a replica's connection broke

	// Write-behind (see deferStmt): BEGIN and SAVEPOINTs may wait in pending
	// with the deferred statements. beginQueued: BEGIN is in pending, not run
	// yet (begun stays false until it runs). deferred, deferredBytes: the
	// statements in pending and their size.
	beginQueued   bool
	deferred      int
	deferredBytes int

	// Buffers that save allocations on the hot path, each used by one
	// statement at a time (see busy): the plan enter returns (planBuf:
	// planArr, or the array a plan outgrew it into), pending's first array,
	// and the batch sendPlan sends.
	planBuf []cmd
	planArr [4]cmd
	pendArr [4]cmd
	batch   pgx.Batch
	queued  [8]pgx.QueuedQuery
	queuedP [8]*pgx.QueuedQuery
}

// push makes l the innermost level.
func (t *txn) push(l *level) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.done || l.parent.ended:
		return ErrTxDone
	case t.stack[len(t.stack)-1] != l.parent:
		return fmt.Errorf("%w: a nested Do started while another nested Do of the same transaction runs", ErrConcurrentUse)
	}
	created := t.savepoints
	for _, s := range t.stack {
		if s.needsSavepoint || s.savepointQueued {
			created++
		}
	}
	if created >= t.core.cfg.maxSavepoints {
		return fmt.Errorf("%w: the bound is %d (WithMaxSavepoints)", ErrTooManySavepoints, t.core.cfg.maxSavepoints)
	}
	t.stack = append(t.stack, l)
	return nil
}

// enter claims the transaction for one statement issued through l and
// returns the connection and the commands to send before the statement.
func (t *txn) enter(ctx context.Context, l *level) (*pgx.Conn, []cmd, error) {
	t.mu.Lock()
	switch {
	case t.done || l.ended:
		t.mu.Unlock()
		return nil, nil, ErrTxDone
	case t.busy:
		t.mu.Unlock()
		return nil, nil, ErrConcurrentUse
	}
	t.busy = true
	plan := t.planBuf[:0]
	if !t.begun && !t.beginQueued {
		plan = t.beginPlan(plan)
	}
	plan = append(plan, t.pending...)
	t.pending = t.pending[:0]
	readOnly := t.opts.readOnly
	for _, s := range t.stack {
		if s.needsSavepoint {
			plan = append(plan, cmd{kind: cmdSavepoint, sql: savepointSQL(s.depth), level: s})
			if s.readOnly && !readOnly {
				plan = append(plan, cmd{kind: cmdReadOnly, sql: "SET TRANSACTION READ ONLY"})
			}
			if s.stmtTimeout != "" {
				plan = append(plan, cmd{kind: cmdSet, sql: "statement_timeout", value: s.stmtTimeout})
			}
			if s.lockTimeout != "" {
				plan = append(plan, cmd{kind: cmdSet, sql: "lock_timeout", value: s.lockTimeout})
			}
		}
		readOnly = readOnly || s.readOnly
	}
	t.planBuf = plan[:0]
	conn := t.conn
	t.mu.Unlock()
	if conn == nil {
		c, err := t.acquire(ctx)
		if err != nil {
			t.mu.Lock()
			t.lost = ctx.Err() == nil // the server could not be reached
			t.mu.Unlock()
			t.leave(nil, "", err, false)
			return nil, nil, err
		}
		t.mu.Lock()
		t.conn = c
		t.mu.Unlock()
		conn = c
	}
	return conn.Conn(), plan, nil
}

// acquire takes a connection: a replica's for a ReadOnly unit of work when
// one can give it, else the primary's.
func (t *txn) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if rs := t.core.replicas; rs != nil && t.opts.readOnly {
		if c, p := rs.acquire(ctx, t.opts.token.later(TokenFromContext(ctx))); c != nil {
			t.pool = p
			return c, nil
		}
	}
	c, err := t.core.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("uow: acquire connection: %w", err)
	}
	return c, nil
}

// leave releases the claim taken by enter, recording the statement's outcome
// and whether the transaction-id probe sent after it answered.
func (t *txn) leave(conn *pgx.Conn, sql string, err error, probed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.busy = false
	t.open = nil
	t.signalLocked()
	if conn != nil {
		t.unprobed = !probed
		if !t.begun && !conn.IsClosed() && conn.PgConn().TxStatus() != 'I' {
			t.begun = true
		}
	}
	if err != nil {
		t.lastErr = err
		return
	}
	if sql != "" && (t.core.prepares || t.core.simple) && !t.core.known.has(sql) {
		t.core.known.add(sql)
	}
}

// claim is enter for one statement (sql) or a batch (b). When the statement
// cannot travel behind the plan's last SAVEPOINT (see pipelineFrom), or alone
// is set (COPY), the plan up to there is sent first on its own; claim returns
// what is left of the plan to send with the statement.
func (t *txn) claim(ctx context.Context, l *level, alone bool, sql string, args []any, b *pgx.Batch) (*pgx.Conn, []cmd, error) {
	conn, plan, err := t.enter(ctx, l)
	if err != nil {
		return nil, nil, err
	}
	k := len(plan)
	if !alone {
		k = t.pipelineFrom(conn, plan, sql, args, b)
	}
	if k == 0 {
		return conn, plan, nil
	}
	if err := t.runPlanAlone(ctx, conn, plan[:k]); err != nil {
		t.leave(conn, "", err, false)
		return nil, nil, err
	}
	return conn, plan[k:], nil
}

// doom makes the transaction rollback-only with cause and ends l.
func (t *txn) doom(l *level, cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.doomLocked(cause)
	t.endLevelLocked(l)
}

// doomLocked makes the transaction rollback-only with cause, unless it
// already is (the first cause is kept).
func (t *txn) doomLocked(cause error) {
	if t.doomed == nil {
		t.doomed = cause
	}
}

// endLevelLocked marks l and every level inside it ended and pops them.
func (t *txn) endLevelLocked(l *level) {
	for i := len(t.stack) - 1; i >= 0; i-- {
		s := t.stack[i]
		s.ended = true
		t.stack = t.stack[:i]
		if s == l {
			return
		}
	}
}

// settle waits for the claim of a statement still running on another
// goroutine and closes a result fn left open. It reports whether one was.
func (t *txn) settle() bool {
	t.mu.Lock()
	for t.busy && t.open == nil {
		if t.idle == nil {
			t.idle = sync.NewCond(&t.mu)
		}
		t.idle.Wait()
	}
	open := t.open
	t.mu.Unlock()
	if open == nil {
		return false
	}
	open.closeOpen()
	return true
}

// openResult is a result that holds the claim on the transaction until it is
// closed (rows, batchResults).
type openResult interface{ closeOpen() }

// signalLocked wakes settle after busy or open changed.
func (t *txn) signalLocked() {
	if t.idle != nil {
		t.idle.Broadcast()
	}
}

// failed reports why the transaction cannot commit, or nil.
func (t *txn) failedLocked() error {
	if t.doomed != nil {
		return t.doomed
	}
	if t.conn != nil {
		c := t.conn.Conn()
		if c.IsClosed() && t.begun {
			if t.lastErr != nil {
				return t.lastErr
			}
			return errors.New("connection closed")
		}
		if !c.IsClosed() && c.PgConn().TxStatus() == 'E' {
			if t.lastErr != nil {
				return t.lastErr
			}
			return errors.New("transaction aborted")
		}
	}
	return nil
}
