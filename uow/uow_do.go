package uow

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// level is one Do call: the outermost transaction (depth 0) or a savepoint.
type level struct {
	tx     *txn
	parent *level  // enclosing level of the same transaction; nil at depth 0
	outer  *level  // innermost level of another pool that ctx carried before this one
	db     *handle // &own
	depth  int
	name   string

	// A nested level's savepoint moves needsSavepoint → (savepointQueued,
	// under write-behind) → hasSavepoint as its SAVEPOINT is planned, queued
	// and run; a plan that fails before it ran sets needsSavepoint again.
	needsSavepoint  bool  // nested, savepoint not created yet
	savepointQueued bool  // SAVEPOINT waits in pending with deferred statements
	hasSavepoint    bool  // SAVEPOINT ran
	writeBehind     bool  // statements of this level may be deferred: WriteBehind here or above, or WithWriteBehind
	lost            error // a deferred statement of this level never ran: it cannot commit
	readOnly        bool
	stmtTimeout     string // effective SET LOCAL values this level sets, "" if none
	lockTimeout     string
	ended           bool

	afterCommit   []func(context.Context)
	afterRollback []func(context.Context, error)

	q      any // Q bound to db, cached by boundTo
	qOwner any

	// Parts of the level kept in it, so that a level costs one allocation
	// (none for the outermost, which lives in its txn).
	own handle
	ctx levelCtx
}

type ctxKey struct{}

// levelCtx is the ctx a level's fn runs with: the caller's ctx carrying the
// level under ctxKey. It does what context.WithValue does, without an
// allocation of its own: it lives in the level.
type levelCtx struct {
	context.Context
	l *level
}

func (c *levelCtx) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return c.l
	}
	return c.Context.Value(key)
}

// withLevel returns ctx carrying l (see levelCtx).
func withLevel(ctx context.Context, l *level) context.Context {
	l.ctx = levelCtx{Context: ctx, l: l}
	return &l.ctx
}

// levelOf returns the innermost level of pool's unit of work in ctx.
func levelOf(ctx context.Context, pool *pgxpool.Pool) *level {
	for l := anyLevel(ctx); l != nil; l = l.outer {
		if l.tx.core.pool == pool {
			return l
		}
	}
	return nil
}

// anyLevel returns the innermost level of any unit of work in ctx.
func anyLevel(ctx context.Context) *level {
	l, _ := ctx.Value(ctxKey{}).(*level)
	return l
}

// hookContext strips every unit of work from ctx, so that a hook or a
// goroutine that outlives fn starts its own.
func hookContext(ctx context.Context) context.Context {
	if anyLevel(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, (*level)(nil))
}

func (u *UnitOfWork[Q]) doOutermost(ctx context.Context, fn func(context.Context, Q) error, o *txOptions) error {
	policy := o.retry
	if policy == nil {
		policy = u.cfg.defaultRetry
	}
	started := time.Now()
	retriedFailover := false
	for attempt := 1; ; attempt++ {
		lost, failedOver, err := u.runOnce(ctx, fn, o, attempt)
		if err != nil && failedOver && !retriedFailover && ctx.Err() == nil {
			// The primary refused the write as read-only (a failover): its
			// connections are gone; once, try again on a fresh one. Or a
			// replica's connection broke under a ReadOnly unit of work, which
			// wrote nothing: the replica is marked down; once, try elsewhere.
			retriedFailover = true
			u.cfg.logger.LogAttrs(ctx, slogDebug, "uow: retrying on a fresh connection to the primary", attrName(o.name), attrAttempt(attempt+1), attrErr(err))
			continue
		}
		if err == nil || policy == nil || !policy.retryable(err) && (!policy.ConnLost || !lost) {
			return err
		}
		if !policy.wait(ctx, attempt, started) {
			if attempt == 1 {
				return err
			}
			return fmt.Errorf("uow: gave up after %d attempts: %w", attempt, err)
		}
		u.cfg.logger.LogAttrs(ctx, slogDebug, "uow: retrying", attrName(o.name), attrAttempt(attempt+1), attrErr(err))
	}
}

// runOnce runs one attempt. lost reports that its connection broke, or could
// not be had, before COMMIT was sent; failedOver that the primary
// refused a write as read-only (see txn.readOnlyPrimary), or that a
// replica's connection broke: both are retried once.
func (u *UnitOfWork[Q]) runOnce(ctx context.Context, fn func(context.Context, Q) error, o *txOptions, attempt int) (lost, failedOver bool, err error) {
	// One allocation holds the transaction, its outermost level, handle and ctx.
	t := &txn{core: &u.core, opts: *o, attempt: attempt, pool: u.pool}
	t.planBuf, t.pending = t.planArr[:0], t.pendArr[:0]
	root := &t.root
	*root = level{tx: t, outer: anyLevel(ctx), name: o.name, readOnly: o.readOnly, writeBehind: o.writeBehind || u.cfg.writeBehind}
	root.own.l = root
	root.db = &root.own
	t.stack = append(t.stackBuf[:0], root)
	ctx, span := u.startSpan(ctx, root)
	defer func() { u.endSpan(span, t, err) }()
	t.outerCtx = ctx
	lctx := withLevel(ctx, root)
	defer func() {
		if p := recover(); p != nil {
			_ = t.finish(ctx, root, fmt.Errorf("uow: panic in fn: %v", p))
			panic(p)
		}
	}()
	err = t.finish(ctx, root, fn(lctx, u.boundTo(root)))
	return t.lost, t.failedOver, err
}

func (u *UnitOfWork[Q]) doNested(ctx context.Context, parent *level, fn func(context.Context, Q) error, o *txOptions) (err error) {
	switch {
	case o.durable:
		return fmt.Errorf("uow: Durable: %w (this call is nested in another unit of work)", ErrNotOutermost)
	case o.isoLevel != "":
		return fmt.Errorf("uow: Isolation(%s): %w (this call is nested in another unit of work)", o.isoLevel, ErrNotOutermost)
	case o.deferrable:
		return fmt.Errorf("uow: Deferrable: %w (this call is nested in another unit of work)", ErrNotOutermost)
	case o.captureToken != nil:
		return fmt.Errorf("uow: CaptureToken: %w (this call is nested in another unit of work)", ErrNotOutermost)
	case !o.token.IsZero():
		return fmt.Errorf("uow: AfterToken: %w (this call is nested in another unit of work)", ErrNotOutermost)
	}
	t := parent.tx
	if o.readOnly {
		t.mu.Lock()
		t.nestedReadOnly = true
		t.mu.Unlock()
	}
	l := &level{tx: t, parent: parent, outer: parent.outer, depth: parent.depth + 1, name: o.name, readOnly: o.readOnly, needsSavepoint: true, writeBehind: o.writeBehind || parent.writeBehind}
	if o.statementTimeout > 0 {
		l.stmtTimeout = millis(o.statementTimeout)
	}
	if o.lockTimeout > 0 {
		l.lockTimeout = millis(o.lockTimeout)
	}
	l.own.l = l
	l.db = &l.own
	if err := t.push(l); err != nil {
		return err
	}
	ctx, span := u.startSpan(ctx, l)
	defer func() { u.endSpan(span, t, err) }()
	lctx := withLevel(ctx, l)
	defer func() {
		if p := recover(); p != nil {
			t.doom(l, fmt.Errorf("uow: panic in nested fn: %v", p))
			panic(p)
		}
	}()
	return t.finishNested(ctx, l, fn(lctx, u.boundTo(l)))
}

// beginSQL renders the BEGIN statement for o (the usual ones rendered once).
func beginSQL(o *txOptions) string {
	if s, ok := beginSQLs[beginKey{o.isoLevel, o.readOnly, o.deferrable}]; ok {
		return s
	}
	return renderBegin(o)
}

type beginKey struct {
	iso                  pgx.TxIsoLevel
	readOnly, deferrable bool
}

var beginSQLs = func() map[beginKey]string {
	m := map[beginKey]string{}
	for _, iso := range []pgx.TxIsoLevel{"", pgx.Serializable, pgx.RepeatableRead, pgx.ReadCommitted, pgx.ReadUncommitted} {
		for _, k := range []beginKey{{iso, false, false}, {iso, true, false}, {iso, false, true}, {iso, true, true}} {
			m[k] = renderBegin(&txOptions{isoLevel: k.iso, readOnly: k.readOnly, deferrable: k.deferrable})
		}
	}
	return m
}()

func renderBegin(o *txOptions) string {
	s := "BEGIN"
	if o.isoLevel != "" {
		s += " ISOLATION LEVEL " + string(o.isoLevel)
	}
	if o.readOnly {
		s += " READ ONLY"
	}
	if o.deferrable {
		s += " DEFERRABLE"
	}
	return s
}

// millis renders d for a PostgreSQL duration setting, rounding up.
func millis(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return fmt.Sprintf("%dms", max(ms, 1))
}
