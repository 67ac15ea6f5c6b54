package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/uow"
)

// bankTransfer is one transfer a worker asked for and what Do returned.
type bankTransfer struct {
	id       int64
	from, to int32
	amount   int64
	err      error
	attempts int // the last attempt fn saw
}

// bankKill terminates up to $2 random sessions of application $1 in this
// database and returns how many it signalled.
const bankKill = `
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int
FROM (SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()
      ORDER BY random() LIMIT $2) AS victims`

// TestBankUnderSerializableWithKiller moves money between accounts in
// SERIALIZABLE units of work that read two balances and write both back
// (a read-modify-write that loses updates under any weaker isolation), with
// retries, while read-only SERIALIZABLE readers sum the balances and a killer
// terminates random sessions of the workers' pool. The total never changes;
// the ledger holds exactly one row per transfer whose Do returned nil, none
// for one that failed, and at most one for one whose outcome is unknown; the
// balances are the initial ones plus the ledger's movements.
func TestBankUnderSerializableWithKiller(t *testing.T) {
	t.Parallel()
	const (
		accounts  = 10
		initial   = 1000
		total     = accounts * initial
		workers   = 16
		perWorker = 150 // 2400 transfers
		readers   = 2
		readEvery = 4  // completed transfers between two reads of a reader
		killEvery = 12 // completed transfers between two kills
		workerApp = "faults-bank-worker"
	)
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()

	url := dbtest.NewURL(t, dbtest.WithoutMigrations())
	admin := faultsPool(t, ctx, url, "faults-bank-admin", 2)
	_, err := admin.Exec(ctx, faultsSchema)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "INSERT INTO bank_accounts (id, balance) SELECT g, $1 FROM generate_series(1, $2::int) AS g", initial, accounts)
	require.NoError(t, err)

	// On a table this small the planner scans it whole, and SERIALIZABLE
	// then locks the relation for every read: every pair of transfers would
	// conflict. Index scans lock only the two accounts a transfer reads.
	workersPool := faultsPool(t, ctx, url, workerApp, workers, [2]string{"enable_seqscan", "off"})
	readersPool := faultsPool(t, ctx, url, "faults-bank-reader", readers)
	wu := uow.New(workersPool, newFaultsQueries)
	ru := uow.New(readersPool, newFaultsQueries)
	policy := uow.RetryPolicy{
		MaxAttempts: 30,
		BaseDelay:   time.Millisecond,
		MaxDelay:    20 * time.Millisecond,
		Budget:      10 * time.Second,
		Codes:       connectionLossCodes,
		ConnLost:    true, // a session killed before COMMIT: replay
	}

	var (
		done         milestones   // transfers whose Do returned
		replays      atomic.Int64 // attempts after the first, seen inside fn
		conflicts    atomic.Int64 // 40001 and 40P01 seen by statements inside fn
		kills        atomic.Int64
		reads        atomic.Int64
		killErr      error
		readErrs     = make([]errorTally, readers)
		badSums      = make([][]int64, readers)
		transfers    = make([][]bankTransfer, workers)
		workersWG    sync.WaitGroup
		backgroundWG sync.WaitGroup
	)
	noteConflict := func(err error) error {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok &&
			(pgErr.Code == pgerrcode.SerializationFailure || pgErr.Code == pgerrcode.DeadlockDetected) {
			conflicts.Add(1)
		}
		return err
	}
	stop := make(chan struct{})
	stopAll := sync.OnceFunc(func() {
		workersWG.Wait()
		close(stop)
		backgroundWG.Wait()
	})
	defer func() {
		cancel() // on an early failure: end the workers' units of work too
		stopAll()
	}()

	for w := range workers {
		rng := rand.New(rand.NewPCG(1, uint64(w)))
		workersWG.Go(func() {
			for i := range perWorker {
				tr := bankTransfer{id: int64(w)*1_000_000 + int64(i), from: rng.Int32N(accounts) + 1, amount: rng.Int64N(100) + 1}
				tr.to = (tr.from+rng.Int32N(accounts-1))%accounts + 1 // any account but from
				dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
				tr.err = wu.Do(dctx, func(ctx context.Context, q *faultsQueries) error {
					tr.attempts = uow.Attempt(ctx)
					if tr.attempts > 1 {
						replays.Add(1)
					}
					balances, err := q.BankBalances(ctx, []int32{tr.from, tr.to})
					if err != nil {
						return noteConflict(err)
					}
					if len(balances) != 2 {
						return fmt.Errorf("transfer %d: read %d balances of accounts %d and %d", tr.id, len(balances), tr.from, tr.to)
					}
					// Both rows are written in id order: transfers A→B and B→A
					// would otherwise deadlock, each found only after
					// deadlock_timeout (1 s).
					moves := []struct {
						id    int32
						delta int64
					}{{tr.from, -tr.amount}, {tr.to, tr.amount}}
					if tr.to < tr.from {
						moves[0], moves[1] = moves[1], moves[0]
					}
					for _, move := range moves {
						n, err := q.BankBalanceSet(ctx, move.id, balances[move.id]+move.delta)
						if err != nil {
							return noteConflict(err)
						}
						if n != 1 {
							return fmt.Errorf("transfer %d: account %d: %d rows updated", tr.id, move.id, n)
						}
					}
					return noteConflict(q.BankLedgerInsert(ctx, bankLedgerInsertParams{
						TransferID: tr.id, FromID: tr.from, ToID: tr.to, Amount: tr.amount, Attempt: int32(tr.attempts),
					}))
				}, uow.Isolation(pgx.Serializable), uow.Retry(policy), uow.Name("transfer"))
				dcancel()
				transfers[w] = append(transfers[w], tr)
				done.add()
			}
		})
	}
	for r := range readers {
		readErrs[r] = errorTally{}
		backgroundWG.Go(func() {
			for k := 1; ; k++ {
				select {
				case <-done.reached(k * readEvery):
				case <-stop:
					return
				}
				var sum int64
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				err := ru.Do(rctx, func(ctx context.Context, q *faultsQueries) error {
					var err error
					sum, err = q.BankTotal(ctx)
					return err
				}, uow.ReadOnly(), uow.Isolation(pgx.Serializable), uow.Retry(uow.DefaultRetry), uow.Name("audit"))
				rcancel()
				reads.Add(1)
				switch {
				case err != nil:
					readErrs[r].add(err)
				case sum != total:
					badSums[r] = append(badSums[r], sum)
				}
			}
		})
	}
	backgroundWG.Go(func() {
		rng := rand.New(rand.NewPCG(2, 0))
		for k := 1; ; k++ {
			select {
			case <-done.reached(k * killEvery):
			case <-stop:
				return
			}
			var n int
			if err := admin.QueryRow(ctx, bankKill, workerApp, rng.IntN(2)+1).Scan(&n); err != nil {
				killErr = err
				return
			}
			kills.Add(int64(n))
		}
	})

	done.await(t, ctx, workers*perWorker, "transfers")
	stopAll()
	require.NoError(t, killErr, "killer")
	requireReleased(t, workersPool, "workers'")
	requireReleased(t, readersPool, "readers'")

	// The total holds.
	var sum int64
	require.NoError(t, admin.QueryRow(ctx, "SELECT sum(balance)::bigint FROM bank_accounts").Scan(&sum))
	require.EqualValues(t, total, sum, "total of the balances after the run")

	// The ledger, against what every client saw.
	type ledgerRow struct {
		from, to int32
		amount   int64
		attempt  int
	}
	ledger := map[int64][]ledgerRow{}
	rows, err := admin.Query(ctx, "SELECT transfer_id, from_id, to_id, amount, attempt FROM bank_ledger")
	require.NoError(t, err)
	defer rows.Close()
	expected := map[int32]int64{}
	var ledgerRows, committedAfterRetry int
	for rows.Next() {
		var id int64
		var r ledgerRow
		require.NoError(t, rows.Scan(&id, &r.from, &r.to, &r.amount, &r.attempt))
		ledger[id] = append(ledger[id], r)
		expected[r.from] -= r.amount
		expected[r.to] += r.amount
		ledgerRows++
		if r.attempt > 1 {
			committedAfterRetry++
		}
	}
	require.NoError(t, rows.Err())

	var ok, failed, unknown, unknownCommitted, attempted int
	failures, unknowns := errorTally{}, errorTally{}
	var bad violations
	for _, trs := range transfers {
		for _, tr := range trs {
			attempted++
			got := ledger[tr.id]
			delete(ledger, tr.id)
			if len(got) > 1 {
				bad.addf("transfer %d has %d ledger rows (Do returned %v after %d attempts)", tr.id, len(got), tr.err, tr.attempts)
			}
			for _, r := range got {
				if r.from != tr.from || r.to != tr.to || r.amount != tr.amount {
					bad.addf("transfer %d: ledger has %d→%d %d, the client moved %d→%d %d", tr.id, r.from, r.to, r.amount, tr.from, tr.to, tr.amount)
				}
			}
			switch outcomeOf(tr.err) {
			case outcomeOK:
				ok++
				if len(got) != 1 {
					bad.addf("transfer %d: Do returned nil after %d attempts but the ledger has %d rows", tr.id, tr.attempts, len(got))
				} else if got[0].attempt != tr.attempts {
					bad.addf("transfer %d: Do returned nil after %d attempts but attempt %d committed", tr.id, tr.attempts, got[0].attempt)
				}
			case outcomeUnknown:
				unknown++
				unknowns.add(tr.err)
				if len(got) == 1 {
					unknownCommitted++
				}
			case outcomeFailed:
				failed++
				failures.add(tr.err)
				if len(got) != 0 {
					bad.addf("transfer %d: Do failed after %d attempts but the ledger has %d rows; it returned: %v", tr.id, tr.attempts, len(got), tr.err)
				}
			}
		}
	}
	for id, got := range ledger {
		bad.addf("ledger has %d rows of transfer %d, which no client asked for", len(got), id)
	}

	// Each balance is the initial one plus the ledger's movements.
	brows, err := admin.Query(ctx, "SELECT id, balance FROM bank_accounts ORDER BY id")
	require.NoError(t, err)
	defer brows.Close()
	for brows.Next() {
		var id int32
		var balance int64
		require.NoError(t, brows.Scan(&id, &balance))
		if want := initial + expected[id]; balance != want {
			bad.addf("account %d: balance %d, initial + ledger movements = %d", id, balance, want)
		}
	}
	require.NoError(t, brows.Err())

	readFailures := errorTally{}
	var wrongSums []int64
	for r := range readers {
		for text, n := range readErrs[r] {
			readFailures[text] += n
		}
		wrongSums = append(wrongSums, badSums[r]...)
	}
	t.Logf("transfers: %d attempted, %d ok, %d failed, %d unknown (%d of them committed); "+
		"%d retries (%d serialization failures or deadlocks seen in fn; %d committed after a retry); "+
		"%d sessions killed; %d reads; %d ledger rows\nfailures:%s\nunknown outcomes:%s\nread failures:%s",
		attempted, ok, failed, unknown, unknownCommitted, replays.Load(), conflicts.Load(), committedAfterRetry,
		kills.Load(), reads.Load(), ledgerRows, failures, unknowns, readFailures)

	bad.requireNone(t, "ledger and balances against the outcomes the clients saw")
	require.Equal(t, workers*perWorker, attempted)
	require.Equal(t, ok+unknownCommitted, ledgerRows, "ledger rows: one per committed transfer")
	require.Empty(t, wrongSums, "sums read by SERIALIZABLE read-only units of work (want %d each)", total)
	require.Empty(t, readFailures, "errors of the readers, whose sessions nobody kills")
	require.Positive(t, reads.Load(), "reads")
	require.Positive(t, conflicts.Load(), "serialization failures seen: the workload never conflicted")
	require.Positive(t, replays.Load(), "retries seen inside fn")
	require.Positive(t, kills.Load(), "sessions killed")
	require.Greater(t, ok, attempted/2, "most transfers commit despite the killer")
}
