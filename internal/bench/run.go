package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cortexerp/datalayer/internal/secret"
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
	if _, ok := os.LookupEnv(proxyEnv); ok {
		// Started as a proxy by a Run whose program does not call ProxyMain:
		// running again would start proxies of its own.
		return nil, fmt.Errorf("run: %s is set: this process was started as a delaying proxy; call bench.ProxyMain first in main", proxyEnv)
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
	opts := []localpg.Option{localpg.WithoutSignalHandler()} // ctx is the way to stop a Run; the defers below clean up
	if len(cfg.ServerEnv) > 0 {
		opts = append(opts, localpg.WithEnvVars(cfg.ServerEnv...))
	}
	srv, err := localpg.Start(ctx, opts...)
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

	rep := &Report{config: cfg, slice: cfg.slice(), started: started}
	if rep.env, err = readEnvironment(ctx, admin, srv, pgbench, psql); err != nil {
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
	rep.took = time.Since(started)
	rep.env.LoadAfter = loadAverage()
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

// tpcb initialises pgbench's tables and runs every variant under every
// condition (each client count, each delay through the proxy), round after
// round, interleaved.
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
	rep.initTook = time.Since(t0)

	// Warm up (untimed): the tables into the caches, the server's processes
	// started, as a first cell would otherwise pay for everyone.
	if _, err := runPgbenchSlice(ctx, r.pgbench, conn, pgbenchTPCB, min(slices.Max(r.cfg.Clients), 4), time.Second, r.tmp, serverCPU{}); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}

	proxies := map[time.Duration]delayer{}
	if len(r.cfg.RTTs) > 0 {
		network, addr, err := serverAddr(url)
		if err != nil {
			return err
		}
		for _, d := range r.cfg.RTTs {
			var p delayer
			if r.cfg.ProxyProcess {
				p, err = startProxyChild(network, addr, d)
			} else {
				p, err = newDelayProxy(network, addr, d)
			}
			if err != nil {
				return err
			}
			defer func() { _ = p.Close() }()
			proxies[d] = p
		}
	}

	conds := r.conditions()
	cells := map[cellKey]*cell{}
	for _, cond := range conds {
		for _, v := range allVariants() {
			cells[cellKey{v, cond}] = &cell{Variant: v, Clients: cond.clients, Proxied: cond.proxied, RTT: cond.rtt}
		}
	}
	for round := range r.cfg.Rounds {
		for ci, cond := range rotate(conds, round) {
			for _, v := range rotate(allVariants(), round+ci) {
				seed := uint64(round)<<32 | uint64(slices.Index(conds, cond))<<16 | uint64(slices.Index(allVariants(), v))<<8
				res, err := r.slice(ctx, url, conn, proxies[cond.rtt], v, cond, seed)
				if err != nil {
					return err
				}
				cells[cellKey{v, cond}].add(res)
				progress(r.cfg, "round %d/%d  %-36s %-24s %8.0f tps", round+1, r.cfg.Rounds, v, cond, ratio(float64(res.n), res.elapsed.Seconds()))
			}
		}
	}
	for _, v := range allVariants() {
		for _, cond := range conds {
			c := cells[cellKey{v, cond}]
			c.finish()
			if cond.proxied {
				rep.rttCells = append(rep.rttCells, *c)
			} else {
				rep.cells = append(rep.cells, *c)
			}
		}
	}

	cons, err := readConsistency(ctx, url)
	if err != nil {
		return err
	}
	rep.consistency = cons
	if !cons.ok() {
		return fmt.Errorf("check consistency: %w", errInconsistent)
	}
	return nil
}

var errInconsistent = errors.New("the sums of abalance, tbalance, bbalance and history delta differ")

type cellKey struct {
	v    variant
	cond condition
}

// condition is what a variant runs against in one cell: a client count,
// connected straight to the server or through the delaying proxy.
type condition struct {
	clients int
	proxied bool
	rtt     time.Duration // what the proxy adds to a round trip
}

func (c condition) String() string {
	if !c.proxied {
		return fmt.Sprintf("%3d clients", c.clients)
	}
	return fmt.Sprintf("%3d clients, %v RTT", c.clients, c.rtt)
}

// conditions are the cells' conditions: every client count straight to the
// server, then every delay through the proxy at RTTClients clients.
func (r *run) conditions() []condition {
	var cs []condition
	for _, n := range r.cfg.Clients {
		cs = append(cs, condition{clients: n})
	}
	for _, d := range r.cfg.RTTs {
		cs = append(cs, condition{clients: r.cfg.RTTClients, proxied: true, rtt: d})
	}
	return cs
}

// slice runs variant v once under cond, through proxy when cond says so.
func (r *run) slice(ctx context.Context, url string, conn clientConn, proxy delayer, v variant, cond condition, seed uint64) (sliceResult, error) {
	var addr *net.TCPAddr
	var chunks0 int64
	var held0 time.Duration
	if cond.proxied {
		addr = proxy.Addr()
		conn = conn.via(addr)
		var err error
		if chunks0, held0, err = proxy.stats(); err != nil {
			return sliceResult{}, err
		}
	}
	var res sliceResult
	var err error
	if v.isPgbench() {
		res, err = runPgbenchSlice(ctx, r.pgbench, conn, v, cond.clients, r.cfg.slice(), r.tmp, r.server)
	} else {
		res, err = runGoSlice(ctx, url, addr, v, cond.clients, r.cfg.Scale, r.cfg.slice(), seed, r.server)
	}
	if err != nil {
		if cond.proxied {
			return sliceResult{}, fmt.Errorf("%v through the proxy: %w", cond.rtt, err)
		}
		return sliceResult{}, err
	}
	if cond.proxied {
		chunks1, held1, err := proxy.stats()
		if err != nil {
			return sliceResult{}, err
		}
		res.prof.proxyChunks, res.prof.proxyHeld = chunks1-chunks0, held1-held0
	}
	return res, nil
}

// serverAddr is the network address a connection string names (its first
// host): TCP, or the socket file of a Unix-domain socket directory.
func serverAddr(connString string) (network, addr string, err error) {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return "", "", fmt.Errorf("read server address: %w", secret.Error(err))
	}
	if strings.HasPrefix(cfg.Host, "/") {
		return "unix", filepath.Join(cfg.Host, ".s.PGSQL."+strconv.Itoa(int(cfg.Port))), nil
	}
	return "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), nil
}

// readConsistency reads the sums TPC-B keeps equal.
func readConsistency(ctx context.Context, url string) (consistency, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return consistency{}, fmt.Errorf("check consistency: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var c consistency
	err = conn.QueryRow(ctx, `SELECT
		(SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts),
		(SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers),
		(SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches),
		(SELECT coalesce(sum(delta), 0) FROM pgbench_history),
		(SELECT count(*) FROM pgbench_history)`).Scan(&c.Accounts, &c.Tellers, &c.Branches, &c.History, &c.HistoryRows)
	if err != nil {
		return consistency{}, fmt.Errorf("check consistency: %w", err)
	}
	return c, nil
}
