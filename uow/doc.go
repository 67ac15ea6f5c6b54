// Package uow runs typed queries inside PostgreSQL transactions: a unit of
// work is a function, committed when it returns nil and rolled back when it
// returns an error or panics.
//
//	u := uow.New(pool, dbgen.New) // typed queries bound to the active transaction
//	err := u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
//		order, err := q.OrderCreate(ctx, params)
//		if err != nil {
//			return err
//		}
//		// Nested: a savepoint. Its failure rolls back only this part.
//		if err := u.Do(ctx, applyCoupon); err != nil && !errors.Is(err, erp.ErrCouponInvalid) {
//			return err
//		}
//		uow.AfterCommit(ctx, func(ctx context.Context) { notify(order.ID) })
//		return nil
//	}, uow.Isolation(pgx.Serializable), uow.Retry(uow.DefaultRetry))
//
// # Nesting
//
// A Do whose ctx comes from an enclosing fn of the same pool runs inside a
// savepoint (named by depth: sp_1, sp_2, …). Its error rolls back only the
// savepoint and is returned to the enclosing fn, which may handle it and go
// on. If fn returns nil although a statement inside it failed (the error was
// swallowed), the transaction cannot commit: Do returns ErrRollbackOnly
// wrapping the cause, and so does the outermost Do. A serialization failure
// or deadlock inside a nested call dooms the whole transaction: only the
// outermost call retries.
//
// Queries(ctx) and DB(ctx) give the handles of the innermost unit of work in
// ctx, or of the pool when there is none, so repository code works in and out
// of a transaction. Handles must not be used after their fn returned
// (ErrTxDone) nor by two goroutines at once (ErrConcurrentUse).
//
// # Options
//
// Per call (TxOption): Isolation, ReadOnly, Deferrable, Retry,
// StatementTimeout, LockTimeout, Durable, Name. Isolation, Deferrable and
// Durable only apply to the outermost call; nested, they return an error
// wrapping ErrNotOutermost. ReadOnly nested runs SET TRANSACTION READ ONLY in
// the savepoint; the parent is read-write again afterwards. StatementTimeout
// and LockTimeout are SET LOCAL; nested, they last until the nested call
// ends. A ctx deadline also sets statement_timeout at BEGIN, so the server
// stops the work when the caller gives up.
//
// Per unit of work (Option): WithLogger, WithTracerProvider,
// WithMaxSavepoints (default 64, past which PostgreSQL's subtransaction cache
// overflows), WithDefaultRetry, WithReplicas or WithReplicaSet,
// WithWriteBehind.
//
// # Read replicas
//
// A [ReplicaSet] (WithReplicaSet) sends ReadOnly outermost units of work to a
// streaming replica that is up and within ReplicaMaxLag of the primary, else
// to the primary; a write never goes to a replica. CaptureToken hands back a
// committed unit of work's WAL position as a [Token]; a ReadOnly unit of work
// given it (AfterToken, ContextWithToken) runs on a replica only once that
// replica has replayed it, waiting at most ReplicaTokenWait, else on the
// primary: users read their own writes. A read-write unit of work that the
// primary refuses as read-only (SQLSTATE 25006, after a failover) drops the
// primary's connections and runs once more on a fresh one.
//
// # Write-behind
//
// Under WriteBehind (per call) or WithWriteBehind (per UnitOfWork) a
// statement whose text starts with sqlc's "-- name: X :exec" line is not sent
// when called: it is queued, with the BEGIN or SAVEPOINT it needs, and
// travels in the round trip of the next statement that needs a reply, or
// with COMMIT. :execrows, :one, :many, COPY, batches and hand-written SQL are
// never deferred. The contract:
//   - a deferred statement's error is returned by the call that carried it
//     (the next statement, the end of a nested Do, or COMMIT), wrapped as
//     "uow: deferred X: …"; the unit of work rolls back, and retries replay
//     from BEGIN, as always;
//   - a nested Do sends its deferred statements before it returns, so its
//     error is its own and its savepoint is rolled back alone;
//   - a deferred statement that could not be sent at all (an argument pgx
//     cannot encode, a batch that failed before it ran) makes the level it
//     belongs to rollback-only: a caller that swallows the error still gets
//     ErrRollbackOnly, never a commit without the write;
//   - the queue is sent once it holds 64 statements or 1 MiB;
//   - panics, ErrTxDone, ErrConcurrentUse, hooks and the commit outcome behave
//     as without it, in every exec mode.
//
// Arguments are read when the statement is sent (byte slices are copied when
// queued): do not change what a pointer argument refers to before the next
// statement that needs a reply returns.
//
// # Retries
//
// With Retry (or WithDefaultRetry) the outermost call replays fn from BEGIN
// on serialization failures (40001), deadlocks (40P01), ErrCommitAborted and
// the SQLSTATEs the policy adds, with full-jitter exponential backoff bounded
// by the attempts, a total budget and the ctx deadline. Attempt(ctx) tells fn
// which try runs. fn must therefore have no effects outside the database:
// put them in AfterCommit hooks.
//
// # Hooks
//
// AfterCommit hooks run once, in order, after the outermost COMMIT succeeded,
// never for a failed attempt; registered in a nested call they move to its
// parent when it succeeds and are dropped when it rolls back. AfterRollback
// hooks run with the error: for a nested call when its savepoint rolls back,
// otherwise after the outermost rollback. Both run synchronously before the
// outermost Do returns, with a ctx that carries no unit of work.
//
// # Commit outcome
//
// The server's COMMIT tag is the outcome: a session that ends right after it
// (FATAL 57P01 from pg_terminate_backend or a fast shutdown) does not turn a
// commit into an error. If the connection is lost while COMMIT is in flight
// with no tag received, the unit of work asks a fresh connection
// pg_xact_status for its transaction id: committed gives nil, aborted gives
// ErrCommitAborted (retryable), anything else ErrCommitUnknown, which no
// policy retries, whatever its Codes. It never retries blindly.
//
// RetryPolicy.ConnLost replays an attempt whose connection broke before
// COMMIT was sent (the server rolled it back), e.g. across a server restart.
//
// # Round trips
//
// BEGIN (and any SET LOCAL) travels in one batch with the first statement; a
// savepoint is created only when its nested call runs a statement, in the
// same batch; RELEASE waits for the next statement or disappears into
// COMMIT. One statement costs two round trips (pgx's Begin, Exec, Commit
// cost three), an empty unit of work none. In the exec modes that prepare a
// new statement in a round trip of its own (the default), a savepoint travels
// with a statement only once that statement has been prepared successfully
// on the pool; the first time it is sent alone, so that a statement that
// fails to prepare cannot abort the enclosing transaction. In simple_protocol
// a batch is one query message that PostgreSQL parses whole before running
// any of it, so a savepoint travels with a statement only once that statement
// ran on the pool and when its arguments render as valid UTF-8 without NUL.
//
// A statement with more than 65,535 parameters (the extended protocol's
// bound) fails with ErrTooManyParameters before anything is sent.
package uow
