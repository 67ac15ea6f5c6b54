// Package provider builds every PostgreSQL pool a service needs from the
// environment: named databases (main, analytics, …) each with optional read
// replicas, pinged with bounded retry at start, checked by Health, closed
// gracefully by Close, observed through slog, OpenTelemetry spans and pool
// metrics.
//
//	p, err := provider.New(ctx) // DATABASE_URL, DB_NAMES, DB_<NAME>_*
//	if err != nil { return err }
//	defer p.Close(context.WithoutCancel(ctx))
//	pool := p.Main().Pool()
//
// See README.md for every variable. Passwords never appear in the errors,
// logs or formatted values (%v, %+v, %#v, slog, JSON) of this package.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sethvargo/go-retry"
	"go.opentelemetry.io/otel/metric"

	"github.com/cortexerp/datalayer/internal/pgtypes"
	"github.com/cortexerp/datalayer/internal/replag"
	"github.com/cortexerp/datalayer/internal/secret"
)

// Provider owns the pools of every configured database. It is safe for
// concurrent use.
type Provider struct {
	cfg    Config
	logger *slog.Logger
	dbs    []*DB

	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// DB is one named database: a primary pool and its read replica pools. It is
// safe for concurrent use.
type DB struct {
	name     string
	cfg      DatabaseConfig
	primary  *pool
	replicas []*pool

	lag        *replag.Prober      // nil without replicas (provider_replicas.go)
	lagMetrics metric.Registration // nil without a meter provider
}

// pool is one pgxpool.Pool with what the provider needs to check, log and
// close it.
type pool struct {
	name    string // "main", "main/replica-0"
	replica int    // -1 for a primary
	cfg     DatabaseConfig
	pool    *pgxpool.Pool
	tracker *connTracker
}

// closeGrace is how long Close waits, after its ctx ended and the remaining
// connections were interrupted, for their holders to release them.
const closeGrace = time.Second

// New reads the configuration (see LoadConfig), opens a pool per database
// and replica, and pings each, retrying transient failures (connection
// refused, 57P03 starting up, 53300 too many connections, …) with capped
// exponential backoff up to DB_<NAME>_CONNECT_RETRIES times. It logs each
// failed attempt. On any failure it closes what it opened and returns every
// database's error.
func New(ctx context.Context, opts ...Option) (*Provider, error) {
	o := &options{logger: slog.Default()}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("new provider: option %d is nil", i)
		}
		if err := opt.apply(o); err != nil {
			return nil, fmt.Errorf("new provider: %w", err)
		}
	}
	cfg, warnings, err := loadConfig(o.environ)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		o.logger.Warn("provider: ignoring variable", "var", w.key, "reason", w.reason)
	}

	p := &Provider{cfg: cfg, logger: o.logger}
	var pools []*pool
	for _, dc := range cfg.Databases {
		db, err := p.open(ctx, dc, o)
		if err != nil {
			p.closeNow()
			return nil, err
		}
		p.dbs = append(p.dbs, db)
		pools = append(pools, db.pools()...)
	}

	errs := make([]error, len(pools))
	var wg sync.WaitGroup
	for i, pl := range pools {
		wg.Go(func() { errs[i] = pl.connect(ctx, o.logger) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.closeNow()
		return nil, err
	}
	for _, db := range p.dbs {
		if err := db.startLag(o); err != nil {
			p.closeNow()
			return nil, fmt.Errorf("new provider: database %q: %w", db.name, err)
		}
	}
	return p, nil
}

// open creates the pools of one database; they connect lazily.
func (p *Provider) open(ctx context.Context, dc DatabaseConfig, o *options) (*DB, error) {
	db := &DB{name: dc.Name, cfg: dc}
	for i := -1; i < len(dc.ReplicaURLs); i++ {
		pl, err := p.openPool(ctx, dc, i, o)
		if err != nil {
			db.closeNow()
			return nil, err
		}
		if i < 0 {
			db.primary = pl
		} else {
			db.replicas = append(db.replicas, pl)
		}
	}
	return db, nil
}

func (p *Provider) openPool(ctx context.Context, dc DatabaseConfig, replica int, o *options) (*pool, error) {
	pc, err := dc.poolConfig(replica)
	if err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrConfig, err)
	}
	pl := &pool{name: dc.Name, replica: replica, cfg: dc, tracker: newConnTracker()}
	logger := o.logger.With("db", dc.Name)
	if replica >= 0 {
		pl.name = fmt.Sprintf("%s/replica-%d", dc.Name, replica)
		logger = logger.With("replica", replica)
	}
	pc.ConnConfig.Tracer = tracer(p.cfg, o, logger, pl.name, pl.tracker)
	// Close refuses new work: no new connection, no acquire.
	pc.BeforeConnect = func(context.Context, *pgx.ConnConfig) error {
		if p.closing.Load() {
			return pl.errClosed()
		}
		return nil
	}
	pc.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) {
		if p.closing.Load() {
			return true, pl.errClosed()
		}
		return true, nil
	}
	// Every enum type of the database and its array type is registered on
	// each new connection (one round trip), then the WithAfterConnect
	// functions run.
	fns := o.afterConnect
	pc.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if err := pgtypes.Register(ctx, conn); err != nil {
			return fmt.Errorf("after connect: %w", err)
		}
		for _, fn := range fns {
			if err := fn(ctx, conn); err != nil {
				return fmt.Errorf("after connect: %w", err)
			}
		}
		return nil
	}
	pl.pool, err = pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", pl.label(), secret.Error(err))
	}
	if err := recordStats(o, pl.pool, pl.name); err != nil {
		pl.pool.Close()
		return nil, fmt.Errorf("open %s: %w", pl.label(), err)
	}
	return pl, nil
}

// connect pings the pool until it answers, retrying transient failures.
func (pl *pool) connect(ctx context.Context, logger *slog.Logger) error {
	c := pl.cfg
	b := retry.NewExponential(c.ConnectBackoff)
	b = retry.WithJitterPercent(20, b)
	b = retry.WithCappedDuration(c.ConnectBackoffMax, b)
	b = retry.WithMaxRetries(uint64(c.ConnectRetries), b)

	start := time.Now()
	attempts := 0
	var last error
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		attempts++
		actx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
		err := pl.pool.Ping(actx)
		cancel()
		if err == nil {
			return nil
		}
		last = secret.Error(err)
		if ctx.Err() != nil || !transient(err) {
			return last
		}
		if attempts <= c.ConnectRetries {
			logger.Warn("provider: database not reachable, retrying",
				"db", c.Name, "pool", pl.name, "attempt", attempts, "max_attempts", c.ConnectRetries+1, "err", last)
		}
		return retry.RetryableError(last)
	})
	if err == nil {
		logger.Debug("provider: database ready", "db", c.Name, "pool", pl.name, "attempts", attempts, "elapsed", time.Since(start))
		return nil
	}
	var msg string
	switch {
	case last == nil: // ctx ended before the first attempt
		return fmt.Errorf("connect to %s: %w", pl.label(), err)
	case ctx.Err() != nil:
		return fmt.Errorf("connect to %s: %w after %s in %s; last error: %w", pl.label(), context.Cause(ctx),
			plural(attempts, "attempt"), time.Since(start).Round(time.Millisecond), last)
	case transient(last):
		msg = fmt.Sprintf("connect to %s: gave up after %s in %s", pl.label(), plural(attempts, "attempt"), time.Since(start).Round(time.Millisecond))
	default:
		msg = "connect to " + pl.label()
	}
	if h := hint(last, c, pl.replica); h != "" {
		return fmt.Errorf("%s: %w (%s)", msg, last, h)
	}
	return fmt.Errorf("%s: %w", msg, last)
}

// label describes the pool in messages: never its password.
func (pl *pool) label() string {
	cc := pl.pool.Config().ConnConfig
	what := fmt.Sprintf("database %q", pl.cfg.Name)
	if pl.replica >= 0 {
		what = fmt.Sprintf("replica %d of database %q", pl.replica, pl.cfg.Name)
	}
	return fmt.Sprintf("%s (%s@%s:%d/%s)", what, cc.User, cc.Host, cc.Port, cc.Database)
}

func (pl *pool) errClosed() error {
	return fmt.Errorf("pool %q: %w (Close was called)", pl.name, ErrClosed)
}

// Main returns the database named main, or the first in DB_NAMES when none
// is named main.
func (p *Provider) Main() *DB {
	for _, db := range p.dbs {
		if db.name == mainName {
			return db
		}
	}
	return p.dbs[0]
}

// DB returns the named database (case-insensitive); an unknown name gets an
// error wrapping ErrUnknownDatabase that lists the known ones.
func (p *Provider) DB(name string) (*DB, error) {
	want := strings.ToLower(strings.TrimSpace(name))
	for _, db := range p.dbs {
		if db.name == want {
			return db, nil
		}
	}
	return nil, fmt.Errorf("%w %q: DB_NAMES has %s", ErrUnknownDatabase, name, strings.Join(p.cfg.Names, ", "))
}

// Names lists the databases in DB_NAMES order.
func (p *Provider) Names() []string { return slices.Clone(p.cfg.Names) }

// Close refuses new work at once (acquiring a connection from any of the
// provider's pools fails with ErrClosed), waits until the connections in
// use are released or ctx ends, then closes every pool. When ctx ends
// first, the connections still in use are interrupted (their statements
// fail) and the error says how many there were. Calling Close again, or
// concurrently, waits for the first call and returns its result.
func (p *Provider) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.closing.Store(true)
		var pools []*pool
		for _, db := range p.dbs {
			db.stopLag()
			pools = append(pools, db.pools()...)
		}
		errs := make([]error, len(pools))
		var wg sync.WaitGroup
		for i, pl := range pools {
			wg.Go(func() { errs[i] = pl.close(ctx) })
		}
		wg.Wait()
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

// closeNow closes whatever New opened after a failure.
func (p *Provider) closeNow() {
	p.closing.Store(true)
	for _, db := range p.dbs {
		db.closeNow()
	}
}

func (db *DB) closeNow() {
	db.stopLag()
	for _, pl := range db.pools() {
		pl.pool.Close()
	}
}

// close waits for the pool's acquired connections, then closes it.
func (pl *pool) close(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for pl.pool.Stat().AcquiredConns() > 0 {
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		n := pl.tracker.interrupt()
		done := make(chan struct{})
		go func() { pl.pool.Close(); close(done) }()
		timer := time.NewTimer(closeGrace)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
		}
		return fmt.Errorf("close pool %q: interrupted %s still in use: %w", pl.name, plural(n, "connection"), context.Cause(ctx))
	}
	pl.pool.Close()
	return nil
}

// Name returns the database's name from DB_NAMES, in lower case.
func (db *DB) Name() string { return db.name }

// Config returns the database's configuration (its String and LogValue
// redact passwords): the replica bounds to give uow.NewReplicaSet, say.
func (db *DB) Config() DatabaseConfig { return db.cfg }

// Pool returns the primary's pool. After Provider.Close it is closed.
func (db *DB) Pool() *pgxpool.Pool { return db.primary.pool }

// Replicas returns the read replicas' pools, in DB_<NAME>_REPLICA_URLS
// order; nil when there are none.
func (db *DB) Replicas() []*pgxpool.Pool {
	var out []*pgxpool.Pool
	for _, r := range db.replicas {
		out = append(out, r.pool)
	}
	return out
}

func (db *DB) pools() []*pool {
	if db.primary == nil {
		return db.replicas
	}
	return append([]*pool{db.primary}, db.replicas...)
}

// String describes the database without secrets.
func (db *DB) String() string {
	return fmt.Sprintf("provider.DB{name: %s, primary: %s, replicas: %d}", db.name, db.primary.label(), len(db.replicas))
}

// GoString is String, so %#v prints no secrets either.
func (db *DB) GoString() string { return db.String() }

// String describes the provider without secrets.
func (p *Provider) String() string {
	return fmt.Sprintf("provider.Provider{databases: %s, closed: %t}", strings.Join(p.cfg.Names, ", "), p.closing.Load())
}

// GoString is String, so %#v prints no secrets either.
func (p *Provider) GoString() string { return p.String() }

// plural formats "1 attempt", "3 attempts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
