package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/peterldowns/pgtestdb"

	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/internal/testdb"
	"github.com/cortexerp/datalayer/localpg"
)

// DatabaseURLEnv names the variable that opts a server in for tests: dbtest
// then uses the server of its URL (a superuser's, or a role that may create
// roles and databases) instead of starting one. On it dbtest creates the role
// pgtdbuser, templates named testdb_tpl_* (kept, to be reused by the next
// run) and databases named dbtest_<owner>_<n>, where owner identifies the
// test process and is held as an advisory lock by it while it runs. A test
// process sweeps, when it starts, the databases of owners whose lock is free
// (killed runs), except those kept for a failed test; the others it leaves
// alone, as they belong to test binaries running at the same time.
//
// DATABASE_URL and TEST_DATABASE_URL, which may name a server that is not
// meant for tests, are never used.
const DatabaseURLEnv = "DBTEST_DATABASE_URL"

// PoolSizeEnv names the variable that sets how many databases are kept
// cloned ahead per template (default: GOMAXPROCS; 0 clones on demand).
const PoolSizeEnv = "DBTEST_POOL_SIZE"

// ownerLockClass is the first key of the advisory lock an owner holds
// ("dbt1"); the second is the owner's id.
const ownerLockClass = 0x64627431

// keptComment marks a database kept for a failed test; the sweep spares it.
const keptComment = "dbtest: kept for a failed test"

// shared is the process-wide server.
var shared struct {
	once sync.Once
	srv  *localpg.Server
	err  error
}

// Server returns the process-wide server, starting it on first use: the
// server of $DBTEST_DATABASE_URL ([DatabaseURLEnv]) when set, else one that
// [localpg.Start] starts from Docker or local binaries (never the server of
// DATABASE_URL or TEST_DATABASE_URL). A server dbtest started is never
// stopped explicitly: localpg's watchdog removes it when the process exits.
// A failure to start it fails t.
func Server(t testing.TB) *localpg.Server {
	t.Helper()
	return server(t)
}

func server(t tb) *localpg.Server {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		opts := []localpg.Option{localpg.WithSources(localpg.SourceDocker, localpg.SourceBinaries)}
		if os.Getenv(DatabaseURLEnv) != "" {
			opts = []localpg.Option{localpg.WithSources(localpg.SourceEnv), localpg.WithEnvVars(DatabaseURLEnv)}
		}
		shared.srv, shared.err = localpg.Start(ctx, opts...)
	})
	if shared.err != nil {
		t.Fatalf("dbtest: start a PostgreSQL server: %v", shared.err)
	}
	return shared.srv
}

// proc is the state of this test process on the shared server: its owner
// id and lock, an admin pool, the templates, the clones made ahead and the
// databases of Tx. Its methods are safe for concurrent use.
type proc struct {
	srv   *localpg.Server
	base  pgtestdb.Config
	admin *pgxpool.Pool
	lock  *pgx.Conn // holds the owner's advisory lock; used by the sweep, then closed by shutdown
	owner uint32
	size  int  // clones made ahead per template
	keep  bool // the server outlives the process (DBTEST_DATABASE_URL): drop what is left at exit

	seq  atomic.Uint64
	work sync.WaitGroup // background clones, drops and the sweep
	drop chan struct{}  // bounds concurrent background drops

	mu        sync.Mutex
	closed    bool
	templates map[string]*template // by migrator key
	dropErr   error                // the first failed background drop
}

// template is one migrated template, its clones made ahead and its Tx database.
type template struct {
	once   sync.Once
	name   string
	err    error
	supply *supply
	tx     *txDB
	txOnce sync.Once
	txErr  error
}

var procState struct {
	once sync.Once
	p    *proc
	err  error
}

// process returns this process's state, set up on first use.
func process(t tb) *proc {
	t.Helper()
	srv := server(t)
	procState.once.Do(func() { procState.p, procState.err = newProc(srv) })
	if procState.err != nil {
		t.Fatalf("dbtest: %v", procState.err)
	}
	return procState.p
}

func newProc(srv *localpg.Server) (*proc, error) {
	size := runtime.GOMAXPROCS(0)
	if v := os.Getenv(PoolSizeEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 64 {
			return nil, fmt.Errorf("%s=%q: want a number of databases from 0 to 64", PoolSizeEnv, v)
		}
		size = n
	}
	base, err := testdb.Config(srv.URL())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var id [4]byte
	_, _ = rand.Read(id[:])
	owner := binary.BigEndian.Uint32(id[:])
	// Every session of the process carries its owner's name, so that a sweep
	// can wait for the last of a dead owner's sessions (a CREATE DATABASE
	// still running when it was killed) to end.
	app := ownerApp(owner)
	pcfg, err := pgxpool.ParseConfig(srv.URL())
	if err != nil {
		return nil, secret.Error(fmt.Errorf("parse the server's URL: %w", err))
	}
	pcfg.MaxConns = int32(max(4, 2*size))
	pcfg.ConnConfig.RuntimeParams["application_name"] = app
	admin, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, secret.Error(fmt.Errorf("open the admin pool: %w", err))
	}
	p := &proc{
		srv: srv, base: base, admin: admin, size: size, owner: owner,
		keep:      srv.Source() == localpg.SourceEnv,
		drop:      make(chan struct{}, max(2, size)),
		templates: map[string]*template{},
	}
	// The lock lives in the database "postgres" whatever the URL names, so
	// that every process on the server sees every other's.
	lcfg, err := pgx.ParseConfig(srv.URLFor("postgres"))
	var lock *pgx.Conn
	if err == nil {
		lcfg.RuntimeParams["application_name"] = app
		lock, err = pgx.ConnectConfig(ctx, lcfg)
	}
	if err == nil {
		_, err = lock.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", int32(ownerLockClass), int32(p.owner))
	}
	if err != nil {
		if lock != nil {
			_ = lock.Close(ctx)
		}
		admin.Close()
		return nil, secret.Error(fmt.Errorf("take the owner lock: %w", err))
	}
	// The lock is held even on a server of this process's own: a child test
	// process may share it (through DBTEST_DATABASE_URL) and sweep.
	p.lock = lock
	if p.keep {
		p.work.Add(1)
		go p.sweep()
	}
	return p, nil
}

// ownerApp is the application_name of owner's admin sessions.
func ownerApp(owner uint32) string { return fmt.Sprintf("dbtest_%08x", owner) }

// prefix is the start of this process's database names.
func (p *proc) prefix() string { return fmt.Sprintf("dbtest_%08x_", p.owner) }

// newName returns a database name no one has used.
func (p *proc) newName() string { return p.prefix() + strconv.FormatUint(p.seq.Add(1), 10) }

// template returns the template m migrates, made on first use.
func (p *proc) template(m pgtestdb.Migrator) (*template, error) {
	key, err := m.Hash()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errClosed
	}
	tp := p.templates[key]
	if tp == nil {
		tp = &template{}
		p.templates[key] = tp
	}
	p.mu.Unlock()
	tp.once.Do(func() {
		tp.name, tp.err = testdb.Template(p.base, m)
		if tp.err == nil {
			tp.supply = &supply{p: p, tpl: tp.name, size: p.size, ready: make(chan clone, p.size)}
		}
	})
	return tp, tp.err
}

var errClosed = errors.New("used after dbtest.Main's Run returned")

// sweep drops the databases of owners that are gone (their lock is free),
// except those kept for a failed test.
func (p *proc) sweep() {
	defer p.work.Done()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	rows, err := p.admin.Query(ctx, `SELECT datname FROM pg_database
		WHERE datname ~ '^dbtest_[0-9a-f]{8}_[0-9]+$' AND NOT datistemplate
		AND coalesce(shobj_description(oid, 'pg_database'), '') <> $1`, keptComment)
	if err != nil {
		p.dropFailed(fmt.Errorf("sweep: list databases: %w", err))
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		p.dropFailed(fmt.Errorf("sweep: list databases: %w", err))
		return
	}
	byOwner := map[uint32][]string{}
	for _, n := range names {
		owner, err := strconv.ParseUint(n[len("dbtest_"):len("dbtest_")+8], 16, 32)
		if err == nil && uint32(owner) != p.owner {
			byOwner[uint32(owner)] = append(byOwner[uint32(owner)], n)
		}
	}
	for owner, dbs := range byOwner {
		var gone bool
		if err := p.lock.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", int32(ownerLockClass), int32(owner)).Scan(&gone); err != nil {
			p.dropFailed(fmt.Errorf("sweep: %w", err))
			return
		}
		if !gone {
			continue // a test process that runs now
		}
		var sessions int
		err := p.admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", ownerApp(owner)).Scan(&sessions)
		if err != nil || sessions > 0 {
			// Its last statements still run (a CREATE DATABASE, say): the
			// next sweep will drop what they leave.
			_, _ = p.lock.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", int32(ownerLockClass), int32(owner))
			continue
		}
		for _, db := range dbs {
			if err := p.dropNow(ctx, db); err != nil {
				p.dropFailed(err)
			}
		}
		if _, err := p.lock.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", int32(ownerLockClass), int32(owner)); err != nil {
			p.dropFailed(fmt.Errorf("sweep: %w", err))
			return
		}
	}
}

// dropLater drops database name in the background.
func (p *proc) dropLater(name string) {
	p.work.Add(1)
	go func() {
		defer p.work.Done()
		p.drop <- struct{}{}
		defer func() { <-p.drop }()
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		if err := p.dropNow(ctx, name); err != nil {
			p.dropFailed(err)
		}
	}()
}

// dropNow drops database name, ending any session still on it.
func (p *proc) dropNow(ctx context.Context, name string) error {
	if _, err := p.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// dropFailed records the first failure of background work, for Main.
func (p *proc) dropFailed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dropErr == nil {
		p.dropErr = secret.Error(err)
	}
}
