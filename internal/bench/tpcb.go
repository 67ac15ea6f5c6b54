package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/internal/bench/tpcb/tpcbgen"
	"github.com/cortexerp/datalayer/uow"
)

// variant names one way of running the TPC-B transaction.
type variant string

// The variants, in report order. The pgbench ones are the baselines; (a) is
// the baseline of the Go ones.
const (
	// pgbenchTPCB is pgbench's built-in tpcb-like script, -M prepared:
	// BEGIN, five statements, END, each a round trip of its own.
	pgbenchTPCB variant = "pgbench TPC-B"
	// pgbenchSelect is pgbench -S: one SELECT per transaction, no BEGIN. A
	// ceiling: one round trip per transaction.
	pgbenchSelect variant = "pgbench select-only"
	// pgxBegin is hand-written pgx: pool.Begin, five Exec/QueryRow, Commit.
	pgxBegin variant = "(a) pgx Begin/Commit"
	// pgxBeginFunc is the same statements inside pgx.BeginFunc.
	pgxBeginFunc variant = "(b) pgx.BeginFunc"
	// uowTyped is the five typed queries of tpcbgen inside uow.Do, BEGIN
	// pipelined with the first one.
	uowTyped variant = "(c) uow.Do + tpcbgen"
	// uowBatch is uow.Do with the four typed writes of tpcbgen queued into one
	// batch (BEGIN pipelined with it), then the typed SELECT.
	uowBatch variant = "(d) uow.Do + batch"
	// uowWriteBehind is (c)'s code, unchanged, in a UnitOfWork built with
	// uow.WithWriteBehind: the :exec writes wait for the next round trip,
	// so BEGIN and the account update ride with the SELECT, and the other
	// three writes with COMMIT.
	uowWriteBehind variant = "(e) uow.Do + tpcbgen + WriteBehind"
)

// allVariants returns every variant in report order.
func allVariants() []variant {
	return []variant{pgbenchTPCB, pgbenchSelect, pgxBegin, pgxBeginFunc, uowTyped, uowBatch, uowWriteBehind}
}

// isPgbench reports whether v runs in pgbench rather than in this process.
func (v variant) isPgbench() bool { return v == pgbenchTPCB || v == pgbenchSelect }

// The statements of pgbench's tpcb-like script, for the hand-written variants.
const (
	sqlAccountUpdate  = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"
	sqlAccountBalance = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
	sqlTellerUpdate   = "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2"
	sqlBranchUpdate   = "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2"
	sqlHistoryInsert  = "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)"
)

// txParams are one transaction's random inputs, drawn as pgbench draws them.
type txParams struct {
	aid, bid, tid, delta int32
}

// paramGen draws txParams for one client at one scale.
type paramGen struct {
	r                           *rand.Rand
	accounts, tellers, branches int32
}

func newParamGen(scale int, seed uint64) *paramGen {
	return &paramGen{
		r:        rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		accounts: int32(100_000 * scale),
		tellers:  int32(10 * scale),
		branches: int32(scale),
	}
}

// next returns aid in [1, 100000·scale], bid in [1, scale], tid in
// [1, 10·scale] and delta in [-5000, 5000], uniformly, like the script's \set.
func (g *paramGen) next() txParams {
	return txParams{
		aid:   1 + g.r.Int32N(g.accounts),
		bid:   1 + g.r.Int32N(g.branches),
		tid:   1 + g.r.Int32N(g.tellers),
		delta: g.r.Int32N(10_001) - 5000,
	}
}

// txFunc runs one TPC-B transaction.
type txFunc func(ctx context.Context, p txParams) error

// goTransaction returns variant v's transaction on pool.
func goTransaction(v variant, pool *pgxpool.Pool) (txFunc, error) {
	switch v {
	case pgxBegin:
		return func(ctx context.Context, p txParams) error {
			tx, err := pool.Begin(ctx)
			if err != nil {
				return fmt.Errorf("begin: %w", err)
			}
			defer func() { _ = tx.Rollback(ctx) }() // after Commit: no round trip
			if err := handWritten(ctx, tx, p); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}, nil
	case pgxBeginFunc:
		return func(ctx context.Context, p txParams) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return handWritten(ctx, tx, p) })
		}, nil
	case uowTyped:
		u := uow.New(pool, tpcbgen.New)
		return func(ctx context.Context, p txParams) error {
			return u.Do(ctx, func(ctx context.Context, q *tpcbgen.Queries) error { return typed(ctx, q, p) })
		}, nil
	case uowBatch:
		u := uow.New(pool, tpcbgen.New)
		return func(ctx context.Context, p txParams) error {
			return u.Do(ctx, func(ctx context.Context, q *tpcbgen.Queries) error { return batched(ctx, u.DB(ctx), q, p) })
		}, nil
	case uowWriteBehind:
		u := uow.New(pool, tpcbgen.New, uow.WithWriteBehind())
		return func(ctx context.Context, p txParams) error {
			return u.Do(ctx, func(ctx context.Context, q *tpcbgen.Queries) error { return typed(ctx, q, p) })
		}, nil
	}
	return nil, fmt.Errorf("variant %q does not run in Go", v)
}

// handWritten is the transaction's body as a pgx user writes it by hand.
func handWritten(ctx context.Context, tx pgx.Tx, p txParams) error {
	if _, err := tx.Exec(ctx, sqlAccountUpdate, p.delta, p.aid); err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	var balance int32
	if err := tx.QueryRow(ctx, sqlAccountBalance, p.aid).Scan(&balance); err != nil {
		return fmt.Errorf("select balance: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlTellerUpdate, p.delta, p.tid); err != nil {
		return fmt.Errorf("update teller: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlBranchUpdate, p.delta, p.bid); err != nil {
		return fmt.Errorf("update branch: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlHistoryInsert, p.tid, p.bid, p.aid, p.delta); err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	return nil
}

// typed is the transaction's body with the generated queries.
func typed(ctx context.Context, q *tpcbgen.Queries, p txParams) error {
	if err := q.AccountUpdate(ctx, tpcbgen.AccountUpdateParams{Delta: p.delta, Aid: p.aid}); err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	if _, err := q.AccountBalance(ctx, p.aid); err != nil {
		return fmt.Errorf("select balance: %w", err)
	}
	if err := q.TellerUpdate(ctx, tpcbgen.TellerUpdateParams{Delta: p.delta, Tid: p.tid}); err != nil {
		return fmt.Errorf("update teller: %w", err)
	}
	if err := q.BranchUpdate(ctx, tpcbgen.BranchUpdateParams{Delta: p.delta, Bid: p.bid}); err != nil {
		return fmt.Errorf("update branch: %w", err)
	}
	if err := q.HistoryInsert(ctx, tpcbgen.HistoryInsertParams{Tid: p.tid, Bid: p.bid, Aid: p.aid, Delta: p.delta}); err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	return nil
}

// batched sends the four writes as one batch through db (the unit of work's
// DBTX, so BEGIN travels with them), then runs the SELECT. The balance is
// read after the teller, branch and history writes instead of before them;
// it is the same value, since only this transaction can change the row it
// has locked.
func batched(ctx context.Context, db uow.DBTX, q *tpcbgen.Queries, p txParams) error {
	var eq execQueue
	w := tpcbgen.New(&eq)
	// Queuing cannot fail: the errors come from send.
	_ = w.AccountUpdate(ctx, tpcbgen.AccountUpdateParams{Delta: p.delta, Aid: p.aid})
	_ = w.TellerUpdate(ctx, tpcbgen.TellerUpdateParams{Delta: p.delta, Tid: p.tid})
	_ = w.BranchUpdate(ctx, tpcbgen.BranchUpdateParams{Delta: p.delta, Bid: p.bid})
	_ = w.HistoryInsert(ctx, tpcbgen.HistoryInsertParams{Tid: p.tid, Bid: p.bid, Aid: p.aid, Delta: p.delta})
	if err := eq.send(ctx, db); err != nil {
		return fmt.Errorf("send writes: %w", err)
	}
	if _, err := q.AccountBalance(ctx, p.aid); err != nil {
		return fmt.Errorf("select balance: %w", err)
	}
	return nil
}

// sliceResult is what one variant did in one slice.
type sliceResult struct {
	n         int64
	failed    int64
	elapsed   time.Duration
	latencies []time.Duration
	prof      profile
}

// profile is where one slice's time went: what the client and the server
// spent, summed over the slice. A zero field is unknown.
type profile struct {
	roundTrips int64         // client writes to the server (Go variants)
	allocs     uint64        // heap allocations (Go variants)
	clientCPU  time.Duration // the client process's CPU time
	serverCPU  time.Duration // the server processes' CPU time

	proxyChunks int64         // chunks the delaying proxy forwarded (proxied cells)
	proxyHeld   time.Duration // the time it held them, summed
}

// runGoSlice runs v with clients goroutines over a pool of as many
// connections for d. The connections are opened before the clock starts,
// as pgbench opens its own; statements are prepared inside the slice, on
// first use, as pgbench -M prepared prepares them. With a proxy the
// connections go through it instead of to the server's address.
func runGoSlice(ctx context.Context, url string, proxy *net.TCPAddr, v variant, clients, scale int, d time.Duration, seed uint64, server serverCPU) (sliceResult, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return sliceResult{}, fmt.Errorf("parse url: %w", err)
	}
	pcfg.MaxConns = int32(clients)
	var writes atomic.Int64
	dial := pcfg.ConnConfig.DialFunc
	pcfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if proxy != nil {
			network, addr = "tcp", proxy.String()
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &writes}, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return sliceResult{}, fmt.Errorf("open pool: %w", err)
	}
	defer pool.Close()
	conns := make([]*pgxpool.Conn, 0, clients)
	for range clients {
		c, err := pool.Acquire(ctx)
		if err != nil {
			for _, c := range conns {
				c.Release()
			}
			return sliceResult{}, fmt.Errorf("connect: %w", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	run, err := goTransaction(v, pool)
	if err != nil {
		return sliceResult{}, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lats := make([][]time.Duration, clients)
	for i := range lats {
		lats[i] = make([]time.Duration, 0, 8192)
	}
	var wg sync.WaitGroup
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	allocs0, writes0 := mem.Mallocs, writes.Load()
	client0, clientOK := selfCPU()
	server0, serverOK := server.read()
	start := time.Now()
	deadline := start.Add(d)
	for i := range clients {
		gen := newParamGen(scale, seed+uint64(i))
		lat := lats[i]
		wg.Go(func() {
			defer func() { lats[i] = lat }()
			for {
				t0 := time.Now()
				if !t0.Before(deadline) || ctx.Err() != nil {
					return
				}
				if err := run(ctx, gen.next()); err != nil {
					cancel(err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := sliceResult{elapsed: elapsed}
	if server1, ok := server.read(); ok && serverOK {
		res.prof.serverCPU = server1 - server0
	}
	if client1, ok := selfCPU(); ok && clientOK {
		res.prof.clientCPU = client1 - client0
	}
	runtime.ReadMemStats(&mem)
	res.prof.allocs = mem.Mallocs - allocs0
	res.prof.roundTrips = writes.Load() - writes0
	if err := context.Cause(ctx); err != nil {
		return sliceResult{}, fmt.Errorf("%s, %d clients: %w", v, clients, err)
	}
	for _, l := range lats {
		res.n += int64(len(l))
		res.latencies = append(res.latencies, l...)
	}
	return res, nil
}
