package dbtest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/internal/pgtypes"
	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/uow"
)

// Tx returns a context carrying a transaction on a migrated database shared
// by the tests of this process that use the same migrations, and the pool of
// that database. The transaction is rolled back in t.Cleanup: nothing the
// test writes is ever seen by another test. Pass ctx to the code under test
// and build its units of work on pool:
//
//	ctx, pool := dbtest.Tx(t)
//	u := uow.New(pool, dbgen.New)
//	err := erp.PlaceOrder(ctx, u, order) // its u.Do is a savepoint in the test's transaction
//	got, err := u.Queries(ctx).OrderGet(ctx, id) // sees what PlaceOrder wrote
//
// In ctx, u.Queries and u.DB run in the transaction and u.Do runs nested, as
// a savepoint that its error rolls back, as it would inside any unit of work.
// The pool's sessions are read-only by default: a statement run on the pool
// itself, or in a unit of work begun from another ctx, reads the shared,
// empty database and fails if it writes, rather than commit into it.
//
// Use Tx for repository and query tests (most tests), [New] for a test that
// needs what a rolled-back transaction cannot give:
//
//   - commits: uow.AfterCommit hooks never run (AfterRollback hooks run at
//     the end of the test), nor does anything that happens at COMMIT
//     (deferred constraints, the commit outcome, uow.Durable);
//   - options of an outermost unit of work: u.Do in ctx is nested, so
//     uow.Isolation and uow.Deferrable return uow.ErrNotOutermost, uow.Retry
//     never replays, and the UnitOfWork options of u (WithWriteBehind,
//     WithReplicas, WithDefaultRetry) do not apply;
//   - concurrency: one transaction, one statement at a time (a second
//     goroutine gets uow.ErrConcurrentUse); no other session sees its rows,
//     so locks, isolation anomalies and SKIP LOCKED cannot be watched;
//   - NOTIFY, which is delivered on commit only;
//   - statements that cannot run in a transaction block (CREATE DATABASE,
//     VACUUM, CREATE INDEX CONCURRENTLY);
//   - state outside the transaction: sequences advance for good, and a
//     database kept for inspection (the transaction is rolled back even
//     when t fails).
//
// Options: [WithMigrations] and [WithoutMigrations] choose the shared
// database; [WithMaxConns] is refused. A failure fails t at once.
func Tx(t testing.TB, opts ...Option) (context.Context, *pgxpool.Pool) {
	t.Helper()
	return tx(t, opts)
}

// txDB is the database Tx shares between the tests of a process.
type txDB struct {
	name string
	pool *pgxpool.Pool
	u    *uow.UnitOfWork[uow.DBTX]
}

// errTestEnded rolls back a test's transaction.
var errTestEnded = errors.New("dbtest: the test ended: rolled back")

func tx(t tb, opts []Option) (context.Context, *pgxpool.Pool) {
	t.Helper()
	cfg := options(t, opts, "Tx")
	tp := templateFor(t, cfg)
	tp.txOnce.Do(func() { tp.tx, tp.txErr = newTxDB(tp) })
	if tp.txErr != nil {
		t.Fatalf("dbtest: %v", tp.txErr)
	}
	db := tp.tx
	// The transaction is the unit of work of a Do on a goroutine of its own
	// that waits for the test to end, then rolls back.
	started := make(chan error, 1)
	var txCtx context.Context
	release, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		_ = db.u.Do(t.Context(), func(ctx context.Context, q uow.DBTX) error {
			// The first statement takes the connection and BEGIN travels with it.
			_, err := q.Exec(ctx, "SET TRANSACTION READ WRITE")
			txCtx = ctx
			started <- err
			if err != nil {
				return err
			}
			<-release
			return errTestEnded
		})
	}()
	err := <-started
	cleanup := func() {
		close(release)
		<-done
	}
	if err != nil {
		cleanup()
		t.Fatalf("dbtest: begin the test's transaction: %v", secret.Error(err))
	}
	t.Cleanup(cleanup)
	return txCtx, db.pool
}

// newTxDB clones tp's template into the database Tx shares and opens its pool.
func newTxDB(tp *template) (*txDB, error) {
	p := procState.p
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := tp.supply.take(ctx)
	if err != nil {
		return nil, secret.Error(err)
	}
	if c.pool != nil {
		c.pool.Close() // made for New; Tx's pool is configured otherwise
	}
	name := c.name
	pcfg, err := pgxpool.ParseConfig(c.url)
	if err != nil {
		return nil, secret.Error(fmt.Errorf("parse the shared database URL: %w", err))
	}
	// Each test holds a connection while it runs.
	pcfg.MaxConns = int32(max(16, 4*runtime.GOMAXPROCS(0)))
	pcfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pcfg.AfterConnect = pgtypes.Register
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		p.dropLater(name)
		return nil, secret.Error(fmt.Errorf("open a pool on the shared database: %w", err))
	}
	return &txDB{name: name, pool: pool, u: uow.New(pool, func(d uow.DBTX) uow.DBTX { return d })}, nil
}
