package dbtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/peterldowns/pgtestdb"

	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/internal/testdb"
)

// supply keeps up to size clones of one template made ahead. Each clone
// goes to one caller of take only.
//
// Clones in the making (inflight) and made (ready) never number more than
// size, so that a clone made always finds room in ready; take starts the
// missing ones and waits for the next made. Once shutdown closed it, a
// clone made is dropped (or left to the server's end) instead.
type supply struct {
	p     *proc
	tpl   string
	size  int        // 0: clone on demand
	ready chan clone // buffered: size

	mu       sync.Mutex
	inflight int
	closed   bool
}

// clone is the outcome of one CREATE DATABASE … TEMPLATE: the database,
// its URL (as pgtestdb's role) and, when made ahead, a pool of
// [DefaultMaxConns] on it with one connection open.
type clone struct {
	name string
	url  string
	pool *pgxpool.Pool
	err  error
}

// take returns a database cloned from the template that no one else will get.
func (s *supply) take(ctx context.Context) (clone, error) {
	if s.size == 0 {
		c := s.make(ctx)
		return c, c.err
	}
	if err := s.refill(); err != nil {
		return clone{}, err
	}
	select {
	case c := <-s.ready:
		if err := s.refill(); err != nil && c.err == nil {
			s.discard(c)
			return clone{}, err
		}
		return c, c.err
	case <-ctx.Done():
		return clone{}, ctx.Err()
	}
}

// discard closes c's pool and drops its database in the background.
func (s *supply) discard(c clone) {
	if c.pool != nil {
		c.pool.Close()
	}
	s.p.dropLater(c.name)
}

// refill starts the clones that bring ready and inflight up to size.
func (s *supply) refill() error {
	s.lock()
	defer s.unlock()
	if s.closed {
		return errClosed
	}
	for len(s.ready)+s.inflight < s.size {
		s.inflight++
		s.p.work.Add(1)
		go s.fill()
	}
	return nil
}

// fill makes one clone in the background and hands it to ready.
func (s *supply) fill() {
	defer s.p.work.Done()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := s.make(ctx)
	if c.err == nil {
		// Connected ahead too: a new session costs a test as much as a clone
		// on a loaded machine.
		c.pool, c.err = openPool(context.Background(), c.url, DefaultMaxConns)
		if c.err == nil {
			c.err = c.pool.Ping(ctx)
		}
		if c.err != nil {
			if c.pool != nil {
				c.pool.Close()
			}
			c = clone{err: c.err}
		}
	}
	s.lock()
	defer s.unlock()
	s.inflight--
	if s.closed {
		if c.pool != nil {
			c.pool.Close()
		}
		if c.err == nil && s.p.keep {
			s.p.dropLater(c.name)
		}
		return
	}
	s.ready <- c // never blocks: see supply
}

// make clones the template into a new database owned by pgtestdb's role.
func (s *supply) make(ctx context.Context) clone {
	name := s.p.newName()
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{s.tpl}.Sanitize() +
		" OWNER " + pgx.Identifier{pgtestdb.DefaultRoleUsername}.Sanitize()
	if _, err := s.p.admin.Exec(ctx, sql); err != nil {
		return clone{err: fmt.Errorf("clone template %s: %w", s.tpl, err)}
	}
	return clone{name: name, url: testdb.RoleURL(s.p.base, name)}
}

func (s *supply) lock()   { s.mu.Lock() }
func (s *supply) unlock() { s.mu.Unlock() }

// close stops the supply, closes the pools of the clones it holds and
// returns their names.
func (s *supply) close() []string {
	s.lock()
	defer s.unlock()
	s.closed = true
	var names []string
	for {
		select {
		case c := <-s.ready:
			if c.pool != nil {
				c.pool.Close()
			}
			if c.err == nil {
				names = append(names, c.name)
			}
		default:
			return names
		}
	}
}

// take returns a fresh database migrated per cfg, failing t when it cannot.
func take(t tb, cfg config) clone {
	t.Helper()
	tp := templateFor(t, cfg)
	c, err := tp.supply.take(t.Context())
	if err != nil {
		t.Fatalf("dbtest: %v", secret.Error(err))
	}
	return c
}

// templateFor returns the template cfg asks for, failing t when it cannot.
func templateFor(t tb, cfg config) *template {
	t.Helper()
	p := process(t)
	var m pgtestdb.Migrator = pgtestdb.NoopMigrator{}
	if !cfg.empty {
		fsys := cfg.fsys
		if fsys == nil {
			fsys = defaultMigrations(t)
		}
		gm, err := testdb.NewSetsMigrator("dbtest-goose-", append([]testdb.Set{{FS: fsys}}, cfg.sets...)...)
		if err != nil {
			t.Fatalf("dbtest: %v", err)
		}
		m = gm
	}
	tp, err := p.template(m)
	if err != nil {
		t.Fatalf("dbtest: %v", secret.Error(err))
	}
	return tp
}

// finish ends a test's use of database name: kept and logged when t failed,
// else dropped in the background. With checkConns (NewURL, whose
// connections are the test's own) a connection still open fails t first.
func finish(t tb, name, dbURL string, checkConns bool) {
	p := procState.p
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if checkConns && !t.Failed() {
		if n, err := p.waitIdle(ctx, name); err != nil {
			t.Errorf("dbtest: count the connections to database %s: %v", name, secret.Error(err))
		} else if n > 0 {
			t.Errorf("dbtest: %d connections to database %s are still open after the test: "+
				"close every pool and connection opened on the URL of dbtest.NewURL", n, name)
		}
	}
	if t.Failed() {
		p.markKept(ctx, name)
		t.Logf("dbtest: kept database %s for inspection: %s", name, secret.Redact(dbURL))
		return
	}
	p.dropLater(name)
}

// waitIdle waits, until ctx ends, for the sessions on database name to end
// (a closed connection's session ends a moment after the client left), and
// returns how many are left.
func (p *proc) waitIdle(ctx context.Context, name string) (int, error) {
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var n int
		err := p.admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n)
		if err != nil || n == 0 {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, nil
		case <-time.After(wait):
		}
	}
}

// markKept comments database name so that no sweep drops it.
func (p *proc) markKept(ctx context.Context, name string) {
	_, err := p.admin.Exec(ctx, "COMMENT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" IS '"+keptComment+"'")
	if err != nil {
		p.dropFailed(fmt.Errorf("mark database %s kept: %w", name, err))
	}
}
