package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cortexerp/datalayer/localpg"
)

// stopTimeout bounds the server's shutdown and the databases' removal, which
// run even when ctx was cancelled.
const stopTimeout = 30 * time.Second

// Run measures everything the package documentation lists against one
// server, which it starts through localpg (DATABASE_URL when set) and stops
// at the end. The databases it creates there are dropped before it returns.
// Run reports progress to cfg.Progress. Two Runs against one server keep to
// their own databases, but each skews the other's numbers.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("check config: %w", err)
	}
	pgbench, err := findTool(cfg.Pgbench, "pgbench")
	if err != nil {
		return nil, err
	}
	psql, err := findTool(cfg.Psql, "psql")
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "datalayer-bench-")
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	started := time.Now()
	progress(cfg, "starting PostgreSQL (localpg)")
	srv, err := localpg.Start(ctx, localpg.WithoutSignalHandler()) // ctx is the way to stop a Run; the defers below clean up
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		_ = srv.Stop(sctx)
	}()
	admin, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = admin.Close(context.WithoutCancel(ctx)) }()

	r := &run{cfg: cfg, srv: srv, admin: admin, pgbench: pgbench, psql: psql, tmp: tmp, suffix: randomSuffix(), server: newServerCPU(ctx, admin)}
	defer r.dropDatabases(ctx)

	rep := &Report{Config: cfg, Slice: cfg.Slice(), Started: started}
	if rep.Env, err = environment(ctx, admin, srv, pgbench, psql); err != nil {
		return nil, err
	}
	if err := r.tpcb(ctx, rep); err != nil {
		return nil, fmt.Errorf("tpc-b: %w", err)
	}
	if err := r.load(ctx, rep); err != nil {
		return nil, fmt.Errorf("bulk load: %w", err)
	}
	if err := r.setup(ctx, rep); err != nil {
		return nil, fmt.Errorf("database set-up: %w", err)
	}
	rep.Took = time.Since(started)
	rep.Env.LoadAfter = loadAverage()
	return rep, nil
}

// run is the state of one Run.
type run struct {
	cfg       Config
	srv       *localpg.Server
	admin     *pgx.Conn // the server's "postgres" database, as a superuser
	pgbench   string
	psql      string
	tmp       string
	suffix    string    // makes this run's database names unique on the server
	server    serverCPU // reads the server's CPU time, when it runs here
	dbs       []string  // databases to drop at the end
	templates []string  // template databases to drop at the end
}

func progress(cfg Config, format string, args ...any) {
	_, _ = fmt.Fprintf(cfg.Progress, format+"\n", args...)
}

// createDatabase creates a database named prefix_suffix, dropped at the end
// of the run, and returns its name.
func (r *run) createDatabase(ctx context.Context, prefix string) (string, error) {
	name := prefix + "_" + r.suffix
	if _, err := r.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	r.dbs = append(r.dbs, name)
	return name, nil
}

// dropDatabase drops a database createDatabase or a set-up step created.
func (r *run) dropDatabase(ctx context.Context, name string) error {
	if _, err := r.admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	r.dbs = slices.DeleteFunc(r.dbs, func(n string) bool { return n == name })
	return nil
}

// dropDatabases drops what createDatabase created, even after ctx ended.
func (r *run) dropDatabases(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	for _, name := range r.templates {
		_, _ = r.admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE false")
		r.dbs = append(r.dbs, name)
	}
	for _, name := range slices.Backward(r.dbs) {
		_, _ = r.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tpcb initialises pgbench's tables and runs every variant at every client
// count, round after round.
func (r *run) tpcb(ctx context.Context, rep *Report) error {
	name, err := r.createDatabase(ctx, "bench_tpcb")
	if err != nil {
		return err
	}
	url := r.srv.URLFor(name)
	conn := newClientConn(url)

	progress(r.cfg, "pgbench -i -s %d", r.cfg.Scale)
	t0 := time.Now()
	if _, err := conn.run(ctx, r.pgbench, "-i", "-q", "-s", fmt.Sprint(r.cfg.Scale)); err != nil {
		return fmt.Errorf("initialise: %w", err)
	}
	rep.InitTook = time.Since(t0)

	// Warm up (untimed): the tables into the caches, the server's processes
	// started, as a first cell would otherwise pay for everyone.
	if _, err := runPgbenchSlice(ctx, r.pgbench, conn, PgbenchTPCB, min(slices.Max(r.cfg.Clients), 4), time.Second, r.tmp, serverCPU{}); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}

	slice := r.cfg.Slice()
	cells := map[cellKey]*Cell{}
	for _, v := range AllVariants() {
		for _, c := range r.cfg.Clients {
			cells[cellKey{v, c}] = &Cell{Variant: v, Clients: c}
		}
	}
	for round := range r.cfg.Rounds {
		for ci, clients := range rotate(r.cfg.Clients, round) {
			for _, v := range rotate(AllVariants(), round+ci) {
				var res sliceResult
				var err error
				if v.IsPgbench() {
					res, err = runPgbenchSlice(ctx, r.pgbench, conn, v, clients, slice, r.tmp, r.server)
				} else {
					seed := uint64(round)<<32 | uint64(clients)<<16 | uint64(slices.Index(AllVariants(), v))<<8
					res, err = runGoSlice(ctx, url, v, clients, r.cfg.Scale, slice, seed, r.server)
				}
				if err != nil {
					return err
				}
				cells[cellKey{v, clients}].add(res)
				progress(r.cfg, "round %d/%d  %-22s %3d clients  %8.0f tps", round+1, r.cfg.Rounds, v, clients, ratio(float64(res.n), res.elapsed.Seconds()))
			}
		}
	}
	for _, v := range AllVariants() {
		for _, c := range r.cfg.Clients {
			cell := cells[cellKey{v, c}]
			cell.finish()
			rep.Cells = append(rep.Cells, *cell)
		}
	}

	cons, err := consistency(ctx, url)
	if err != nil {
		return err
	}
	rep.Consistency = cons
	if !cons.OK() {
		return fmt.Errorf("check consistency: %w", errInconsistent)
	}
	return nil
}

var errInconsistent = errors.New("the sums of abalance, tbalance, bbalance and history delta differ")

type cellKey struct {
	v       Variant
	clients int
}

// consistency reads the sums TPC-B keeps equal.
func consistency(ctx context.Context, url string) (Consistency, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return Consistency{}, fmt.Errorf("check consistency: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var c Consistency
	err = conn.QueryRow(ctx, `SELECT
		(SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts),
		(SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers),
		(SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches),
		(SELECT coalesce(sum(delta), 0) FROM pgbench_history),
		(SELECT count(*) FROM pgbench_history)`).Scan(&c.Accounts, &c.Tellers, &c.Branches, &c.History, &c.HistoryRows)
	if err != nil {
		return Consistency{}, fmt.Errorf("check consistency: %w", err)
	}
	return c, nil
}
