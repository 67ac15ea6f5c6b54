package integration

// Helpers of the fault tests (faults_restart_test.go, faults_bank_test.go).
// They know nothing of the example application: the fault tests bring their
// own schema and a query type in the shape sqlc generates, so they keep
// working when `make remove-example` has taken erp, dbgen and db out.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

// faultsSchema is the schema of both fault tests. Neither table has a unique
// constraint on the key the client chooses: a unit of work applied twice
// shows up as two rows for one key, where a unique index would turn it into
// a rejected retry and hide it.
const faultsSchema = `
CREATE TABLE restart_rows (
    worker  int NOT NULL,
    seq     int NOT NULL,
    attempt int NOT NULL
);
CREATE INDEX restart_rows_key ON restart_rows (worker, seq);

CREATE TABLE bank_accounts (
    id      int    PRIMARY KEY,
    balance bigint NOT NULL
);
CREATE TABLE bank_ledger (
    row_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id bigint NOT NULL,
    from_id     int    NOT NULL REFERENCES bank_accounts (id),
    to_id       int    NOT NULL REFERENCES bank_accounts (id),
    amount      bigint NOT NULL,
    attempt     int    NOT NULL
);
CREATE INDEX bank_ledger_transfer ON bank_ledger (transfer_id);`

// faultsDBTX is the interface sqlc generates next to its Queries.
type faultsDBTX interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

// faultsQueries is a hand-written query type in the shape sqlc generates:
// uow.New(pool, newFaultsQueries) binds it to the active transaction.
type faultsQueries struct{ db faultsDBTX }

func newFaultsQueries(db faultsDBTX) *faultsQueries { return &faultsQueries{db: db} }

const restartRowInsert = `-- name: RestartRowInsert :exec
INSERT INTO restart_rows (worker, seq, attempt) VALUES ($1, $2, $3)`

func (q *faultsQueries) RestartRowInsert(ctx context.Context, worker, seq, attempt int) error {
	_, err := q.db.Exec(ctx, restartRowInsert, worker, seq, attempt)
	return err
}

const restartRowExists = `-- name: RestartRowExists :one
SELECT EXISTS (SELECT FROM restart_rows WHERE worker = $1 AND seq = $2)`

// RestartRowExists reports whether key (worker, seq) has a row already. Run
// before the insert, it makes the transaction's first statement a read, so
// the transaction id is unknown until COMMIT, which then travels with the
// probe that learns it; and it sees a replay of a unit of work whose COMMIT
// had already succeeded.
func (q *faultsQueries) RestartRowExists(ctx context.Context, worker, seq int) (bool, error) {
	var ok bool
	err := q.db.QueryRow(ctx, restartRowExists, worker, seq).Scan(&ok)
	return ok, err
}

const bankBalances = `-- name: BankBalances :many
SELECT id, balance FROM bank_accounts WHERE id = ANY($1::int[]) ORDER BY id`

func (q *faultsQueries) BankBalances(ctx context.Context, ids []int32) (map[int32]int64, error) {
	rows, err := q.db.Query(ctx, bankBalances, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := make(map[int32]int64, len(ids))
	for rows.Next() {
		var id int32
		var balance int64
		if err := rows.Scan(&id, &balance); err != nil {
			return nil, err
		}
		m[id] = balance
	}
	return m, rows.Err()
}

const bankBalanceSet = `-- name: BankBalanceSet :execrows
UPDATE bank_accounts SET balance = $2 WHERE id = $1`

// BankBalanceSet writes a balance computed by the client from what it read:
// a read-modify-write that only SERIALIZABLE keeps from losing updates.
func (q *faultsQueries) BankBalanceSet(ctx context.Context, id int32, balance int64) (int64, error) {
	tag, err := q.db.Exec(ctx, bankBalanceSet, id, balance)
	return tag.RowsAffected(), err
}

const bankLedgerInsert = `-- name: BankLedgerInsert :exec
INSERT INTO bank_ledger (transfer_id, from_id, to_id, amount, attempt) VALUES ($1, $2, $3, $4, $5)`

type bankLedgerInsertParams struct {
	TransferID int64
	FromID     int32
	ToID       int32
	Amount     int64
	Attempt    int32
}

func (q *faultsQueries) BankLedgerInsert(ctx context.Context, p bankLedgerInsertParams) error {
	_, err := q.db.Exec(ctx, bankLedgerInsert, p.TransferID, p.FromID, p.ToID, p.Amount, p.Attempt)
	return err
}

const bankTotal = `-- name: BankTotal :one
SELECT COALESCE(sum(balance), 0)::bigint FROM bank_accounts`

func (q *faultsQueries) BankTotal(ctx context.Context) (int64, error) {
	var n int64
	err := q.db.QueryRow(ctx, bankTotal).Scan(&n)
	return n, err
}

// connectionLossCodes are the SQLSTATEs a server going away sends (57P01
// from a fast shutdown or pg_terminate_backend, 57P02, 57P03 while it shuts
// down or starts) and the connection-exception class. A policy that retries
// them is only safe if the unit of work never replays one whose COMMIT the
// server acknowledged, which is what the fault tests check.
var connectionLossCodes = []string{
	pgerrcode.AdminShutdown, pgerrcode.CrashShutdown, pgerrcode.CannotConnectNow,
	pgerrcode.ConnectionException, pgerrcode.ConnectionDoesNotExist, pgerrcode.ConnectionFailure,
}

// outcome is what a client learned from one Do.
type outcome uint8

const (
	outcomeOK      outcome = iota // Do returned nil: committed
	outcomeFailed                 // any other error: nothing may have been written
	outcomeUnknown                // uow.ErrCommitUnknown: committed or not, to be checked
)

func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, uow.ErrCommitUnknown):
		return outcomeUnknown
	default:
		return outcomeFailed
	}
}

func (o outcome) String() string {
	return [...]string{"ok", "failed", "unknown"}[o]
}

// milestones counts events (completed units of work) and lets another
// goroutine wait, without polling, until the count reaches a value.
// It is safe for concurrent use.
type milestones struct {
	mu      sync.Mutex
	n       int
	waiters map[int][]chan struct{}
}

// add counts one event and wakes the waiters whose value is reached.
func (m *milestones) add() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	for _, ch := range m.waiters[m.n] {
		close(ch)
	}
	delete(m.waiters, m.n)
}

// count returns the events counted so far.
func (m *milestones) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// reached returns a channel closed once n events have been counted.
func (m *milestones) reached(n int) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan struct{})
	if m.n >= n {
		close(ch)
		return ch
	}
	if m.waiters == nil {
		m.waiters = map[int][]chan struct{}{}
	}
	m.waiters[n] = append(m.waiters[n], ch)
	return ch
}

// await blocks until n events have been counted, failing t when ctx ends
// first (what is a deadlock in the code under test).
func (m *milestones) await(t *testing.T, ctx context.Context, n int, what string) {
	t.Helper()
	select {
	case <-m.reached(n):
	case <-ctx.Done():
		require.FailNowf(t, "no progress", "waiting for %d %s (got %d): %v", n, what, m.count(), context.Cause(ctx))
	}
}

// faultsPool opens a pool on url whose connections carry application name
// app (so that the server can tell them apart) and the given settings, and
// closes it in Cleanup.
func faultsPool(t *testing.T, ctx context.Context, url, app string, maxConns int32, settings ...[2]string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.MaxConns = maxConns
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	for _, s := range settings {
		cfg.ConnConfig.RuntimeParams[s[0]] = s[1]
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// requireReleased asserts that every connection went back to pool. A broken
// connection is destroyed by a goroutine of the pool, so the count is
// observed until it settles.
func requireReleased(t *testing.T, pool *pgxpool.Pool, name string) {
	t.Helper()
	require.Eventually(t, func() bool { return pool.Stat().AcquiredConns() == 0 }, 10*time.Second, 5*time.Millisecond,
		"%s pool: %d connections still acquired after every unit of work returned", name, pool.Stat().AcquiredConns())
}

// errorTally groups error texts, for a report that names every kind once.
// Numbers (ports, pids, transaction ids) are masked so that one kind of
// error counts once.
type errorTally map[string]int

var numbers = regexp.MustCompile(`SQLSTATE [0-9A-Z]{5}|[0-9]+`)

func (e errorTally) add(err error) {
	e[numbers.ReplaceAllStringFunc(err.Error(), func(s string) string {
		if strings.HasPrefix(s, "SQLSTATE") {
			return s
		}
		return "N"
	})]++
}

// String lists the kinds, most frequent first.
func (e errorTally) String() string {
	type kv struct {
		text string
		n    int
	}
	var all []kv
	for text, n := range e {
		all = append(all, kv{text, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || (all[i].n == all[j].n && all[i].text < all[j].text) })
	var b strings.Builder
	for i, x := range all {
		if i == 8 {
			fmt.Fprintf(&b, "\n  … %d more kinds", len(all)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %5d × %s", x.n, x.text)
	}
	return b.String()
}

// violations collects broken invariants, so that a failure reports how many
// there are and shows the first few with the exact error each client saw.
type violations struct {
	n     int
	first []string
}

func (v *violations) addf(format string, args ...any) {
	v.n++
	if len(v.first) < 12 {
		v.first = append(v.first, fmt.Sprintf(format, args...))
	}
}

func (v *violations) requireNone(t *testing.T, what string) {
	t.Helper()
	require.Zerof(t, v.n, "%s: %d violations; the first:\n  %s", what, v.n, strings.Join(v.first, "\n  "))
}
