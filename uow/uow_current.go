package uow

import "context"

// DB returns the DBTX of the innermost unit of work in ctx, whatever its
// pool and query type, and false when ctx carries none. It is for libraries
// that write in their caller's transaction without knowing its UnitOfWork
// (the outbox's Publish): a statement sent through it commits or rolls back
// with that unit of work, savepoints included.
func DB(ctx context.Context) (DBTX, bool) {
	l := anyLevel(ctx)
	if l == nil {
		return nil, false
	}
	return l.db, true
}
