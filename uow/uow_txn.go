package uow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// cleanupTimeout bounds ROLLBACK and the commit-outcome check, which run
// without the caller's cancellation.
const cleanupTimeout = 5 * time.Second

// txn is the state of one attempt of an outermost unit of work.
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
	rootDB     handle
	busy       bool       // a statement runs or its result is open
	open       func()     // closes the open result if fn returns without closing it
	idle       *sync.Cond // on mu, created by settle: signalled when busy or open change
	done       bool
	conn       *pgxpool.Conn
	begun      bool  // BEGIN ran
	pending    []cmd // deferred commands for the next round trip
	savepoints int   // savepoints created in this transaction
	xid        string
	unprobed   bool  // statements ran since xid was last probed
	doomed     error // cause that makes the transaction rollback-only
	lastErr    error // last statement error
	lost       bool  // set by finish: the connection broke (or none could be had) before COMMIT was sent

	// Write-behind (see deferStmt): BEGIN and SAVEPOINTs may wait in pending
	// with the deferred statements. beginQueued: BEGIN is in pending, not run
	// yet (begun stays false until it runs). deferred, deferredBytes: the
	// statements in pending and their size.
	beginQueued   bool
	deferred      int
	deferredBytes int

	// Buffers that save allocations on the hot path: BEGIN's plan, the batch
	// sendPlan sends (used by one statement at a time, see busy) and the
	// transaction id read into.
	beginBuf [3]cmd
	batch    pgx.Batch
	queued   [8]pgx.QueuedQuery
	queuedP  [8]*pgx.QueuedQuery
	xidText  pgtype.Text
}

// cmdKind says what a command does to the transaction when it succeeds.
type cmdKind uint8

const (
	cmdBegin cmdKind = iota
	cmdSet           // SET LOCAL name = value
	cmdReset         // SET LOCAL name TO DEFAULT
	cmdSavepoint
	cmdReadOnly
	cmdRelease
	cmdStmt // a deferred statement of level (write-behind)
)

// cmd is a transaction-control command sent ahead of a statement.
type cmd struct {
	kind  cmdKind
	sql   string // statement, or the setting's name for cmdSet
	value string // cmdSet only
	level *level // the level a savepoint or deferred command belongs to
	name  string // cmdStmt: the query's name
	args  []any  // cmdStmt: its arguments
}

const setConfigSQL = "SELECT set_config($1, $2, true)"

func (t *txn) queueCmd(b *pgx.Batch, c cmd) {
	switch c.kind {
	case cmdSet:
		t.queue(b, setConfigSQL, c.sql, c.value)
	case cmdStmt:
		t.queue(b, c.sql, c.args...)
	default:
		t.queue(b, c.sql)
	}
}

func (c cmd) text() string {
	if c.kind == cmdSet {
		return "SET LOCAL " + c.sql + " = '" + c.value + "'" // values are durations this package renders
	}
	return c.sql
}

func savepointName(depth int) string { return "sp_" + strconv.Itoa(depth) }

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
	var plan []cmd
	if !t.begun && !t.beginQueued {
		plan = t.beginPlan()
	}
	plan = append(plan, t.pending...)
	t.pending = t.pending[:0]
	readOnly := t.opts.readOnly
	for _, s := range t.stack {
		if s.needsSavepoint {
			plan = append(plan, cmd{kind: cmdSavepoint, sql: "SAVEPOINT " + savepointName(s.depth), level: s})
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

// beginPlan returns the commands that open the transaction. The deadline
// that bounds statement_timeout is the outermost Do's, not the first
// statement's.
func (t *txn) beginPlan() []cmd {
	plan := t.beginBuf[:1] // beginPlan runs once per transaction
	plan[0] = cmd{kind: cmdBegin, sql: beginSQL(&t.opts)}
	stmt := t.opts.statementTimeout
	if deadline, ok := t.outerCtx.Deadline(); ok {
		if left := time.Until(deadline); stmt == 0 || left < stmt {
			stmt = max(left, time.Millisecond)
		}
	}
	root := t.stack[0]
	if stmt > 0 {
		root.stmtTimeout = millis(stmt)
		plan = append(plan, cmd{kind: cmdSet, sql: "statement_timeout", value: root.stmtTimeout})
	}
	if t.opts.lockTimeout > 0 {
		root.lockTimeout = millis(t.opts.lockTimeout)
		plan = append(plan, cmd{kind: cmdSet, sql: "lock_timeout", value: root.lockTimeout})
	}
	return plan
}

// acquire takes a connection: a replica's for a ReadOnly unit of work when
// one can give it, else the primary's.
func (t *txn) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if replicas := t.core.cfg.replicas; t.opts.readOnly && len(replicas) > 0 {
		start := t.core.next.Add(1)
		for i := range replicas {
			p := replicas[(int(start)+i)%len(replicas)]
			if c, err := p.Acquire(ctx); err == nil {
				t.pool = p
				return c, nil
			}
		}
	}
	c, err := t.core.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("uow: acquire connection: %w", err)
	}
	return c, nil
}

// planDone records the effect of the plan's first n commands, which ran,
// and, when cause is not nil, of the rest, which did not: their savepoints
// are to be made again, and their deferred statements are lost, so that the
// levels they belong to cannot commit.
func (t *txn) planDone(plan []cmd, n int, cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, c := range plan {
		ran := i < n
		if !ran && cause == nil {
			break
		}
		switch c.kind {
		case cmdBegin:
			t.begun = t.begun || ran
			t.beginQueued = false
		case cmdSavepoint:
			c.level.savepointQueued = false
			if ran {
				c.level.needsSavepoint = false
				c.level.hasSavepoint = true
				t.savepoints++
			} else if !c.level.ended {
				c.level.needsSavepoint = true
			}
		case cmdStmt:
			t.deferred--
			t.deferredBytes -= len(c.sql) + argsSize(c.args)
			if !ran && c.level.lost == nil {
				c.level.lost = fmt.Errorf("deferred %s not sent: %w", c.name, cause)
			}
		}
	}
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

// runPlanAlone sends plan on its own: in one simple-protocol round trip, or
// as a batch when it carries deferred statements (they have arguments).
func (t *txn) runPlanAlone(ctx context.Context, conn *pgx.Conn, plan []cmd) error {
	if len(plan) == 0 {
		return nil
	}
	if slices.ContainsFunc(plan, func(c cmd) bool { return c.kind == cmdStmt }) {
		br, err := t.sendPlan(ctx, conn, plan, func(*pgx.Batch) {})
		if err != nil {
			return err
		}
		return br.Close()
	}
	sql := plan[0].text()
	for _, c := range plan[1:] {
		sql += "; " + c.text()
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.mu.Lock()
		if !conn.IsClosed() && conn.PgConn().TxStatus() != 'I' {
			t.begun = true
		}
		t.mu.Unlock()
		t.planDone(plan, 0, err)
		return planError(plan[0], err)
	}
	t.planDone(plan, len(plan), nil)
	return nil
}

// pipelineFrom returns how much of plan must be sent before the statement
// (sql, or b's queries) and the deferred statements behind plan's last
// SAVEPOINT: 0 when all of it may travel in one batch with them.
//
// The statements behind a SAVEPOINT must not be able to fail before it runs:
// in the exec modes that prepare them in a round trip of their own, each
// must have prepared before; in simple_protocol, where PostgreSQL parses the
// whole message first, each must have parsed before, with arguments that
// render as valid UTF-8 without NUL. Otherwise the SAVEPOINT (and what comes
// before it) goes first. A plan that opens the transaction with no deferred
// statement before its SAVEPOINT may always travel: a failure before BEGIN
// ran leaves nothing behind.
func (t *txn) pipelineFrom(conn *pgx.Conn, plan []cmd, sql string, args []any, b *pgx.Batch) int {
	if len(plan) == 0 || !t.core.prepares && !t.core.simple {
		return 0
	}
	last := -1
	for i, c := range plan {
		if c.kind == cmdSavepoint {
			last = i
		}
	}
	if last < 0 {
		return 0
	}
	k := last + 1
	for k < len(plan) && (plan[k].kind == cmdReadOnly || plan[k].kind == cmdSet) {
		k++ // the savepoint's own settings
	}
	if plan[0].kind == cmdBegin && !slices.ContainsFunc(plan[:last], func(c cmd) bool { return c.kind == cmdStmt }) {
		return 0
	}
	safe := func(sql string, args []any) bool {
		return t.core.known.has(sql) && (!t.core.simple || simpleSafe(conn.TypeMap(), args))
	}
	for _, c := range plan[k:] {
		if c.kind == cmdStmt && !safe(c.sql, c.args) {
			return k
		}
	}
	if b == nil {
		if sql != "" && !safe(sql, args) {
			return k
		}
		return 0
	}
	for _, q := range b.QueuedQueries {
		if !safe(q.SQL, q.Arguments) {
			return k
		}
	}
	return 0
}

// simpleSafe reports whether args, rendered as text the way pgx inlines them
// in simple_protocol mode, hold only valid UTF-8 and no NUL: the server
// refuses a whole query message that does not.
func simpleSafe(m *pgtype.Map, args []any) bool {
	var buf []byte
	for _, a := range args {
		switch v := a.(type) {
		case nil, bool, int, int16, int32, int64, uint32, float64, []byte, time.Time:
			continue // digits, words, hex or a timestamp
		case string:
			if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
				return false
			}
			continue
		}
		var err error
		buf, err = m.Encode(0, pgtype.TextFormatCode, a, buf[:0])
		if err != nil || !utf8.Valid(buf) || bytes.IndexByte(buf, 0) >= 0 {
			return false
		}
	}
	return true
}

// sendPlan sends plan, then queue's queries, in one batch and reads the
// plan's results.
func (t *txn) sendPlan(ctx context.Context, conn *pgx.Conn, plan []cmd, queue func(*pgx.Batch)) (pgx.BatchResults, error) {
	b := t.newBatch(len(plan) + 2)
	for _, c := range plan {
		t.queueCmd(b, c)
	}
	queue(b)
	br := conn.SendBatch(ctx, b)
	for i, c := range plan {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			if pe, ok := errors.AsType[pgx.ErrPreprocessingBatch](err); ok {
				// Nothing ran; name the deferred statement that could not be
				// prepared, if it was one.
				t.planDone(plan, 0, err)
				for _, d := range plan {
					if d.kind == cmdStmt && d.sql == pe.SQL() {
						return nil, fmt.Errorf("uow: deferred %s: %w", d.name, err)
					}
				}
				return nil, err
			}
			t.planDone(plan, i, err)
			return nil, planError(c, err)
		}
	}
	t.planDone(plan, len(plan), nil)
	return br, nil
}

// planError labels err with the command c when c caused it. The control
// commands of a plan can only fail on the transaction's state (class 25,
// 3B); a deferred statement, on anything the server reports. Any other error
// in their place belongs to the statement sent with them (in simple_protocol
// a syntax error of the message is reported first), to the session (FATAL)
// or to the round trip (a write that failed), and is returned as is.
func planError(c cmd, err error) error {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || pgErr.Severity != "ERROR" {
		return err
	}
	if c.kind == cmdStmt {
		return fmt.Errorf("uow: deferred %s: %w", c.name, err)
	}
	if !strings.HasPrefix(pgErr.Code, "25") && !strings.HasPrefix(pgErr.Code, "3B") {
		return err
	}
	switch c.kind {
	case cmdBegin:
		return fmt.Errorf("uow: begin: %w", err)
	case cmdSavepoint:
		return fmt.Errorf("uow: savepoint: %w", err)
	default:
		return fmt.Errorf("uow: %s: %w", c.text(), err)
	}
}

const xidProbeSQL = "SELECT pg_current_xact_id_if_assigned()::text"

// probeXid reports whether a batch sent now should learn the transaction id.
func (t *txn) probeXid(plan []cmd) bool {
	return len(plan) > 0 && plan[0].kind == cmdBegin && !t.opts.readOnly
}

// newBatch returns the transaction's batch, emptied, for n queries.
func (t *txn) newBatch(n int) *pgx.Batch {
	b := &t.batch
	if n <= len(t.queuedP) {
		b.QueuedQueries = t.queuedP[:0]
	} else {
		b.QueuedQueries = make([]*pgx.QueuedQuery, 0, n)
	}
	return b
}

// queue adds sql to b, in one of the transaction's query slots while any
// is left.
func (t *txn) queue(b *pgx.Batch, sql string, args ...any) {
	if i := len(b.QueuedQueries); i < len(t.queued) && cap(b.QueuedQueries) == len(t.queuedP) {
		t.queued[i] = pgx.QueuedQuery{SQL: sql, Arguments: args}
		b.QueuedQueries = append(b.QueuedQueries, &t.queued[i])
		return
	}
	b.Queue(sql, args...)
}

// readXid reads the probe's result from br; nil when it answered.
func (t *txn) readXid(br pgx.BatchResults) error {
	xid := &t.xidText
	if err := br.QueryRow().Scan(xid); err != nil {
		return err
	}
	if xid.Valid {
		t.mu.Lock()
		t.xid = xid.String
		t.mu.Unlock()
	}
	return nil
}

// isFatal reports whether err is the server's FATAL or PANIC: the session
// ended there, and nothing sent after the failed command ran.
func isFatal(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && (pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC")
}

// doom makes the transaction rollback-only with cause, unless it already is.
func (t *txn) doom(l *level, cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.doomed == nil {
		t.doomed = cause
	}
	t.endLevelLocked(l)
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
	open()
	return true
}

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
			if t.doomed == nil {
				t.doomed = cause
			}
		}
	}
	t.endLevelLocked(l)
	parent := l.parent
	if ferr == nil {
		if l.hasSavepoint {
			t.dropPendingLocked(l, true)
			t.pending = append(t.pending, cmd{kind: cmdRelease, sql: "RELEASE SAVEPOINT " + savepointName(l.depth), level: l})
			t.restoreSettingsLocked(l)
		}
		parent.afterCommit = append(parent.afterCommit, l.afterCommit...)
		parent.afterRollback = append(parent.afterRollback, l.afterRollback...)
		t.mu.Unlock()
		return nil
	}
	hooks := l.afterRollback
	rollbackTo := l.hasSavepoint && t.conn != nil && !t.conn.Conn().IsClosed()
	if !l.hasSavepoint && t.conn != nil && !t.conn.Conn().IsClosed() && t.conn.Conn().PgConn().TxStatus() == 'E' && t.doomed == nil {
		t.doomed = ferr // failed before its savepoint existed: nothing to roll back to
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
			if t.doomed == nil {
				t.doomed = fmt.Errorf("uow: rollback to savepoint: %w", err)
			}
			t.mu.Unlock()
		}
	}
	if isRetryable(ferr) {
		t.mu.Lock()
		if t.doomed == nil {
			t.doomed = ferr // only the outermost call may replay
		}
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
			} else {
				t.rollback(ctx, conn)
			}
		}
		conn.Release()
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

func isRetryable(err error) bool {
	return DefaultRetry.retryable(err)
}
