package uow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

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

// savepointSQL and releaseSQL render the commands of the savepoint at depth,
// built once for the depths most transactions use.
func savepointSQL(depth int) string {
	if depth < len(savepointSQLs) {
		return savepointSQLs[depth]
	}
	return "SAVEPOINT " + savepointName(depth)
}

func releaseSQL(depth int) string {
	if depth < len(releaseSQLs) {
		return releaseSQLs[depth]
	}
	return "RELEASE SAVEPOINT " + savepointName(depth)
}

var savepointSQLs, releaseSQLs = func() (sp, rel [16]string) {
	for d := range sp {
		sp[d], rel[d] = "SAVEPOINT "+savepointName(d), "RELEASE SAVEPOINT "+savepointName(d)
	}
	return sp, rel
}()

// beginPlan appends to plan the commands that open the transaction. The
// deadline that bounds statement_timeout is the outermost Do's, not the
// first statement's.
func (t *txn) beginPlan(plan []cmd) []cmd {
	plan = append(plan, cmd{kind: cmdBegin, sql: beginSQL(&t.opts)})
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
	if err := t.readPlan(br, plan); err != nil {
		_ = br.Close()
		return nil, err
	}
	return br, nil
}

// readPlan reads the results of plan, sent first in br's batch, and records
// what ran (planDone). It returns the first error, labelled (planError); when
// pgx could not prepare the batch nothing ran, and the error names the
// deferred statement that failed, if it was one.
func (t *txn) readPlan(br pgx.BatchResults, plan []cmd) error {
	for i, c := range plan {
		if _, err := br.Exec(); err != nil {
			if pe, ok := errors.AsType[pgx.ErrPreprocessingBatch](err); ok {
				t.planDone(plan, 0, err)
				for _, d := range plan {
					if d.kind == cmdStmt && d.sql == pe.SQL() {
						return fmt.Errorf("uow: deferred %s: %w", d.name, err)
					}
				}
				return err
			}
			t.planDone(plan, i, err)
			return planError(c, err)
		}
	}
	t.planDone(plan, len(plan), nil)
	return nil
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

// readXid reads the probe's result from br; nil when it answered. It reads
// the raw text rather than scanning it, which saves pgx's scan plan and row
// allocations on every transaction.
func (t *txn) readXid(br pgx.BatchResults) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	var xid uint64
	found := rows.Next()
	if found {
		if v := rows.RawValues(); len(v) == 1 && v[0] != nil { // NULL: no id assigned yet
			xid, err = strconv.ParseUint(string(v[0]), 10, 64)
		}
	}
	rows.Close()
	if rerr := rows.Err(); rerr != nil {
		return rerr
	}
	switch {
	case err != nil:
		return fmt.Errorf("uow: transaction id: %w", err)
	case !found:
		return pgx.ErrNoRows
	case xid != 0:
		t.mu.Lock()
		t.xid = xid
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
