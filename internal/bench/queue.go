package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cortexerp/datalayer/internal/bench/tpcb/tpcbgen"
	"github.com/cortexerp/datalayer/uow"
)

// errNotQueueable is what an execQueue answers to a query that returns rows:
// its result would be needed before the batch is sent.
var errNotQueueable = errors.New("only :exec queries can be queued into a batch")

// execQueue is a tpcbgen.DBTX that runs nothing: each Exec of a generated
// :exec query is queued, typed parameters and all, into one pgx.Batch that
// send then runs in one round trip.
//
// sqlc's own :batchexec cannot do this: it repeats one statement with many
// parameter sets, and sqlc v1.31 has no way to batch different queries
// (sqlc-dev/sqlc#3752, #4195). An execQueue is used by one goroutine.
type execQueue struct {
	b pgx.Batch
}

var _ tpcbgen.DBTX = (*execQueue)(nil)

// Exec queues sql with args; the command tag is empty.
func (e *execQueue) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	e.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// Query refuses: see errNotQueueable.
func (e *execQueue) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errNotQueueable
}

// QueryRow refuses at Scan: see errNotQueueable.
func (e *execQueue) QueryRow(context.Context, string, ...any) pgx.Row {
	return errRow{errNotQueueable}
}

// send runs the queued statements as one batch on db and returns the first
// error, naming the statement's position.
func (e *execQueue) send(ctx context.Context, db uow.DBTX) error {
	br := db.SendBatch(ctx, &e.b)
	for i := range e.b.Len() {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return fmt.Errorf("statement %d of %d: %w", i+1, e.b.Len(), err)
		}
	}
	return br.Close()
}

// errRow is a pgx.Row whose Scan returns err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
