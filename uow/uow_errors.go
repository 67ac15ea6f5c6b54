package uow

import (
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrTxDone is returned when a query handle (q or DB) is used after the unit
// of work it belongs to has ended: keep handles inside fn.
var ErrTxDone = errors.New("uow: unit of work has already ended")

// ErrConcurrentUse is returned when a unit of work is used by a second
// statement while one is still running or its rows are still open: two
// goroutines sharing one transaction, or a Rows left open before the next query.
var ErrConcurrentUse = errors.New("uow: unit of work used concurrently (one statement at a time; close Rows before the next query)")

// ErrRollbackOnly is returned when fn returned nil although a failure inside
// it left the transaction unable to commit (a statement error or a nested
// unit of work's error that was swallowed). The unit of work rolls back and
// wraps the original cause.
var ErrRollbackOnly = errors.New("uow: rollback only: an earlier failure was swallowed")

// ErrNotOutermost is returned when an option that only the outermost unit of
// work can honour (Durable, Isolation, Deferrable) is given to a nested call.
var ErrNotOutermost = errors.New("uow: option applies only to the outermost unit of work")

// ErrTooManySavepoints is returned when a transaction would create more
// savepoints than the bound set by WithMaxSavepoints (default 64). Past 64
// subtransactions PostgreSQL's subtransaction cache overflows and every
// session on the server slows down.
var ErrTooManySavepoints = errors.New("uow: too many savepoints in one transaction")

// ErrCommitUnknown is returned when the connection was lost while COMMIT was
// in flight and the transaction's fate could not be learned. The data may or
// may not be committed; the unit of work does not retry it.
var ErrCommitUnknown = errors.New("uow: commit outcome unknown: connection lost during COMMIT")

// ErrCommitAborted is returned when the connection was lost while COMMIT was
// in flight and the server reports the transaction as aborted. Nothing was
// written; it is retryable.
var ErrCommitAborted = errors.New("uow: commit aborted: connection lost during COMMIT and the server rolled back")

// ErrTooManyParameters is returned, before anything is sent, for a statement
// with more parameters than PostgreSQL's extended protocol can carry (65535):
// pass a list as one array parameter (= ANY($1::bigint[])) or use CopyFrom.
var ErrTooManyParameters = errors.New("uow: too many parameters in one statement")

// maxParams is the most parameters a statement can have in the extended
// protocol, which counts them in 16 bits.
const maxParams = 65535

// checkParams returns ErrTooManyParameters when args cannot be sent as the
// parameters of one statement. simple_protocol inlines them: no bound there.
func (c *core) checkParams(args []any) error {
	if len(args) <= maxParams || c.simple {
		return nil
	}
	n := 0
	for _, a := range args {
		switch a.(type) {
		case pgx.QueryExecMode:
			if a == pgx.QueryExecModeSimpleProtocol {
				return nil
			}
		case pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
		case pgx.QueryRewriter:
			return nil // rewritten into parameters pgx counts itself
		default:
			n++
		}
	}
	if n <= maxParams {
		return nil
	}
	return fmt.Errorf("%w: %d, PostgreSQL takes at most %d (pass a list as one array parameter, = ANY($1::bigint[]), or use CopyFrom)",
		ErrTooManyParameters, n, maxParams)
}

// retryableCodes are the SQLSTATEs every policy retries.
var retryableCodes = []string{pgerrcode.SerializationFailure, pgerrcode.DeadlockDetected}

// sqlState returns the SQLSTATE of err, or "" if err carries none.
func sqlState(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	return ""
}

// translate adds what the unit of work knows to a statement error.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if sqlState(err) == pgerrcode.ReadOnlySQLTransaction {
		return fmt.Errorf("uow: write in a read-only unit of work (the ReadOnly option, which WithReplicas and WithReplicaSet send to a read replica: drop it to write): %w", err)
	}
	return err
}
