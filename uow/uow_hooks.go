package uow

import "context"

// AfterCommit registers fn to run once the outermost unit of work in ctx has
// committed. Hooks registered in a nested call move to its parent when it
// succeeds and are dropped when it or any enclosing call rolls back; they
// never run for a failed retry attempt. Hooks run in order, synchronously,
// before the outermost Do returns, with a ctx that carries no unit of work.
// Outside a unit of work fn runs at once.
func AfterCommit(ctx context.Context, fn func(ctx context.Context)) {
	l := anyLevel(ctx)
	if l == nil {
		fn(ctx)
		return
	}
	t := l.tx
	t.mu.Lock()
	defer t.mu.Unlock()
	l.afterCommit = append(l.afterCommit, fn)
}

// AfterRollback registers fn to run when the unit of work in ctx rolls back,
// with the error that caused it: when its savepoint rolls back for a nested
// call (right then), or when the outermost transaction does (after the
// connection went back to the pool). Outside a unit of work it is ignored.
func AfterRollback(ctx context.Context, fn func(ctx context.Context, err error)) {
	l := anyLevel(ctx)
	if l == nil {
		return
	}
	t := l.tx
	t.mu.Lock()
	defer t.mu.Unlock()
	l.afterRollback = append(l.afterRollback, fn)
}

func runCommitHooks(ctx context.Context, hooks []func(context.Context)) {
	if len(hooks) == 0 {
		return
	}
	ctx = hookContext(ctx)
	for _, h := range hooks {
		h(ctx)
	}
}

func runRollbackHooks(ctx context.Context, hooks []func(context.Context, error), err error) {
	if len(hooks) == 0 {
		return
	}
	ctx = hookContext(ctx)
	for _, h := range hooks {
		h(ctx, err)
	}
}
