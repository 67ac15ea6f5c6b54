package uow

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/internal/replag"
)

// ReplicaSet routes ReadOnly outermost units of work among the streaming
// replicas of one primary, and knows, from a background prober, which of
// them are up and how far behind the primary each is. A replica takes a unit
// of work when its last probe succeeded, its lag is within [ReplicaMaxLag]
// and, given a [Token], it has replayed the token's commit (waiting at most
// [ReplicaTokenWait]); otherwise the unit of work runs on the primary.
//
// Lag is measured in time from WAL positions: each probe reads the primary's
// WAL insert position and keeps it, with the time it read it, for as long as
// the lag bound; a replica's lag is how long ago the primary stood where the
// replica's replay position stands now (interpolated between the two probes
// around it; 0 when it has replayed what the primary had at the last probe).
// An idle primary thus never makes a replica look behind, which the replay
// timestamp (pg_last_xact_replay_timestamp) would, and no clocks of two
// machines are compared. docs/SCALING.md says more.
//
// Build one per primary and share it among the UnitOfWorks of that primary
// ([WithReplicaSet]); Close stops the prober. A ReplicaSet is safe for
// concurrent use.
type ReplicaSet struct {
	primary  *pgxpool.Pool
	replicas []*replica
	cfg      replicaConfig
	probed   bool // a prober runs: statuses are known (false for WithReplicas)
	next     atomic.Uint64

	mu      sync.Mutex // serialises probe rounds; guards history
	history *replag.History
	stop    context.CancelFunc // ends the prober's probes and loop
	done    chan struct{}      // closed when the prober returned
	closed  sync.Once
}

// replica is one replica pool and what the last probe (or a failed acquire)
// learned of it.
type replica struct {
	pool   *pgxpool.Pool
	status atomic.Pointer[ReplicaStatus] // nil until the first probe
}

// ReplicaStatus is what the last probe learned of one replica.
type ReplicaStatus struct {
	// Index is the replica's position among the pools given to NewReplicaSet.
	Index int
	// Healthy is true when the probe succeeded and the server is a standby.
	Healthy bool
	// Err says why the replica is not healthy (nil when it is).
	Err error
	// Replayed is the replica's replay position: the [Token] of the last
	// commit it applied.
	Replayed Token
	// LagBytes is how many bytes of WAL the primary had written past
	// Replayed at the probe.
	LagBytes int64
	// Lag is how far behind the primary the replica is in time (see
	// [ReplicaSet]); within bound when Lag <= ReplicaMaxLag.
	Lag time.Duration
	// ProbedAt is when the probe ran.
	ProbedAt time.Time
}

// ReplicaOption configures a [ReplicaSet].
type ReplicaOption interface {
	applyReplica(*replicaConfig) error
}

type replicaOptionFunc func(*replicaConfig) error

func (f replicaOptionFunc) applyReplica(c *replicaConfig) error { return f(c) }

type replicaConfig struct {
	maxLag    time.Duration
	interval  time.Duration
	tokenWait time.Duration
	timeout   time.Duration
}

// Defaults of the replica options.
const (
	DefaultReplicaMaxLag        = 5 * time.Second
	DefaultReplicaProbeInterval = time.Second
	DefaultReplicaTokenWait     = 200 * time.Millisecond
)

// Bounds of ReplicaProbeInterval.
const (
	minProbeInterval = 10 * time.Millisecond
	maxProbeInterval = time.Minute
)

// ReplicaMaxLag bounds how far behind the primary a replica may be and still
// take units of work (default [DefaultReplicaMaxLag]). The lag is known to
// within one probe interval: keep d above ReplicaProbeInterval.
func ReplicaMaxLag(d time.Duration) ReplicaOption {
	return replicaOptionFunc(func(c *replicaConfig) error {
		if d <= 0 {
			return fmt.Errorf("uow: ReplicaMaxLag: must be positive, got %s", d)
		}
		c.maxLag = d
		return nil
	})
}

// ReplicaProbeInterval sets how often the prober asks the primary and every
// replica where their WAL stands (default [DefaultReplicaProbeInterval],
// within 10ms and 1m). Each probe is one short query per server.
func ReplicaProbeInterval(d time.Duration) ReplicaOption {
	return replicaOptionFunc(func(c *replicaConfig) error {
		if d < minProbeInterval || d > maxProbeInterval {
			return fmt.Errorf("uow: ReplicaProbeInterval: must be within %s and %s, got %s", minProbeInterval, maxProbeInterval, d)
		}
		c.interval = d
		return nil
	})
}

// ReplicaTokenWait bounds how long a ReadOnly unit of work given a [Token]
// waits for a replica to replay it before it runs on the primary instead
// (default [DefaultReplicaTokenWait]; 0: never wait, go to the primary at
// once when no replica has replayed it yet).
func ReplicaTokenWait(d time.Duration) ReplicaOption {
	return replicaOptionFunc(func(c *replicaConfig) error {
		if d < 0 {
			return fmt.Errorf("uow: ReplicaTokenWait: must not be negative, got %s", d)
		}
		c.tokenWait = d
		return nil
	})
}

// NewReplicaSet returns a ReplicaSet for the replicas of primary and starts
// its prober. Until a replica's first probe (at once, then every
// ReplicaProbeInterval) answers, units of work go to the primary; call
// [ReplicaSet.Probe] to wait for it. Close stops the prober.
func NewReplicaSet(primary *pgxpool.Pool, replicas []*pgxpool.Pool, opts ...ReplicaOption) (*ReplicaSet, error) {
	cfg := replicaConfig{maxLag: DefaultReplicaMaxLag, interval: DefaultReplicaProbeInterval, tokenWait: DefaultReplicaTokenWait}
	var errs []error
	if primary == nil {
		errs = append(errs, errors.New("uow: NewReplicaSet: primary must not be nil"))
	}
	if len(replicas) == 0 {
		errs = append(errs, errors.New("uow: NewReplicaSet: give at least one replica"))
	}
	for i, p := range replicas {
		if p == nil {
			errs = append(errs, fmt.Errorf("uow: NewReplicaSet: replica %d is nil", i))
		}
	}
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Errorf("uow: NewReplicaSet: option %d is nil", i))
			continue
		}
		if err := o.applyReplica(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.timeout = min(max(cfg.interval, time.Second), 5*time.Second)
	rs := newReplicaSet(primary, replicas, cfg)
	rs.probed = true
	ctx, cancel := context.WithCancel(context.Background())
	rs.stop, rs.done = cancel, make(chan struct{})
	go rs.run(ctx)
	return rs, nil
}

func newReplicaSet(primary *pgxpool.Pool, pools []*pgxpool.Pool, cfg replicaConfig) *ReplicaSet {
	rs := &ReplicaSet{primary: primary, cfg: cfg, history: replag.NewHistory(cfg.maxLag + 2*cfg.interval)}
	for _, p := range pools {
		rs.replicas = append(rs.replicas, &replica{pool: p})
	}
	return rs
}

// Close stops the prober and waits for it to return. The pools stay open:
// they belong to the caller. Units of work routed by a closed set go to the
// primary. Close is safe to call more than once.
func (rs *ReplicaSet) Close() {
	if rs.stop == nil {
		return
	}
	rs.closed.Do(func() {
		rs.stop()
		<-rs.done
		for _, r := range rs.replicas {
			r.status.Store(nil)
		}
	})
}

// Status returns what the last probe learned of each replica, in the order
// the pools were given; a replica not probed yet has ProbedAt zero and is
// not healthy.
func (rs *ReplicaSet) Status() []ReplicaStatus {
	out := make([]ReplicaStatus, len(rs.replicas))
	for i, r := range rs.replicas {
		if st := r.status.Load(); st != nil {
			out[i] = *st
		} else {
			out[i] = ReplicaStatus{Index: i, Err: errNotProbed}
		}
	}
	return out
}

var errNotProbed = errors.New("uow: replica not probed yet")

// run probes at once, then every interval, until Close cancels ctx.
func (rs *ReplicaSet) run(ctx context.Context) {
	defer close(rs.done)
	tick := time.NewTicker(rs.cfg.interval)
	defer tick.Stop()
	for {
		_ = rs.Probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Probe runs one probe round now: it reads the primary's WAL insert position,
// then each replica's replay position, and updates [ReplicaSet.Status]. The
// prober calls it every ReplicaProbeInterval; a caller that needs fresh
// statuses (a test, a readiness check) may call it too. It returns the
// primary's error, if any; a replica's goes into its status.
func (rs *ReplicaSet) Probe(ctx context.Context) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, rs.timeout())
	var text string
	err := rs.primary.QueryRow(pctx, replag.InsertLSNSQL).Scan(&text)
	cancel()
	now := time.Now()
	var primary uint64
	if err == nil {
		primary, err = replag.ParseLSN(text)
	}
	if err != nil {
		err = fmt.Errorf("uow: probe the primary: %w", err)
	} else {
		rs.history.Add(now, primary)
	}
	var wg sync.WaitGroup
	for i, r := range rs.replicas {
		wg.Go(func() { rs.probeReplica(ctx, i, r, err == nil, primary) })
	}
	wg.Wait()
	return err
}

func (rs *ReplicaSet) timeout() time.Duration {
	if rs.cfg.timeout > 0 {
		return rs.cfg.timeout
	}
	return 5 * time.Second
}

// probeReplica reads r's replay position and stores its status. Without the
// primary's position (primaryOK false) the lag is unknown: the replica is
// kept healthy with the lag of its last status, so that reads survive a
// primary that is down.
func (rs *ReplicaSet) probeReplica(ctx context.Context, i int, r *replica, primaryOK bool, primary uint64) {
	ctx, cancel := context.WithTimeout(ctx, rs.timeout())
	defer cancel()
	st := &ReplicaStatus{Index: i, ProbedAt: time.Now()}
	var (
		inRecovery bool
		text       string
	)
	err := r.pool.QueryRow(ctx, replag.ReplaySQL).Scan(&inRecovery, &text)
	var replayed uint64
	if err == nil {
		replayed, err = replag.ParseLSN(text)
	}
	switch {
	case err != nil:
		st.Err = fmt.Errorf("uow: probe replica %d: %w", i, err)
	case !inRecovery:
		st.Err = fmt.Errorf("uow: probe replica %d: the server is not a standby (promoted?): it no longer follows the primary", i)
	default:
		st.Healthy = true
		st.Replayed = Token{lsn: replayed}
		if !primaryOK {
			if last := r.status.Load(); last != nil {
				st.Lag, st.LagBytes = last.Lag, last.LagBytes
			}
			break
		}
		if primary > replayed {
			st.LagBytes = int64(primary - replayed)
		}
		st.Lag = rs.history.Lag(replayed, st.ProbedAt)
	}
	r.status.Store(st)
}

// eligible reports whether r may take a unit of work, and whether it has
// replayed tok.
func (rs *ReplicaSet) eligible(r *replica, tok Token) (ok, replayed bool) {
	if !rs.probed {
		return true, tok.lsn == 0
	}
	st := r.status.Load()
	if st == nil || !st.Healthy || st.Lag > rs.cfg.maxLag {
		return false, false
	}
	return true, st.Replayed.lsn >= tok.lsn
}

// acquire returns a connection of a replica fit for a unit of work that must
// see tok (zero: any), or nil when none is: the caller then uses the primary.
// A replica that cannot give a connection is marked down until its next
// probe. When every fit replica is behind tok, one of them is asked to
// replay it within ReplicaTokenWait.
func (rs *ReplicaSet) acquire(ctx context.Context, tok Token) (*pgxpool.Conn, *pgxpool.Pool) {
	if tok.primary || len(rs.replicas) == 0 {
		return nil, nil
	}
	start := rs.next.Add(1)
	var behind *replica
	for i := range rs.replicas {
		r := rs.replicas[(int(start)+i)%len(rs.replicas)]
		ok, replayed := rs.eligible(r, tok)
		if !ok {
			continue
		}
		if !replayed {
			if behind == nil {
				behind = r
			}
			continue
		}
		if c := rs.acquireFrom(ctx, r); c != nil {
			return c, r.pool
		}
	}
	if behind == nil || rs.cfg.tokenWait == 0 {
		return nil, nil
	}
	c := rs.acquireFrom(ctx, behind)
	if c == nil {
		return nil, nil
	}
	if !waitReplay(ctx, c, tok, rs.cfg.tokenWait) {
		c.Release()
		return nil, nil
	}
	return c, behind.pool
}

// acquireFrom takes a connection of r, marking r down when it cannot give one.
func (rs *ReplicaSet) acquireFrom(ctx context.Context, r *replica) *pgxpool.Conn {
	c, err := r.pool.Acquire(ctx)
	if err == nil {
		return c
	}
	if ctx.Err() == nil {
		r.markDown(rs.probed, fmt.Errorf("acquire: %w", err))
	}
	return nil
}

// markDown marks the replica of pool down until its next probe: a unit of
// work lost its connection there with err.
func (rs *ReplicaSet) markDown(pool *pgxpool.Pool, err error) {
	for _, r := range rs.replicas {
		if r.pool == pool {
			r.markDown(rs.probed, err)
		}
	}
}

// markDown records that r failed with err, when a prober will bring it back
// (probed): an unprobed set tries every replica each time.
func (r *replica) markDown(probed bool, err error) {
	if !probed {
		return
	}
	if last := r.status.Load(); last != nil && last.Healthy {
		down := *last
		down.Healthy, down.Err = false, fmt.Errorf("uow: replica %d: %w", last.Index, err)
		r.status.CompareAndSwap(last, &down)
	}
}

// waitReplay polls the replica on c until it has replayed tok, for at most
// wait. PostgreSQL 19's WAIT FOR LSN would do this in one statement.
func waitReplay(ctx context.Context, c *pgxpool.Conn, tok Token, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	lsn := tok.String()
	delay := 500 * time.Microsecond
	for {
		var done bool
		if err := c.QueryRow(ctx, replag.ReplayedSQL, lsn).Scan(&done); err != nil {
			return false
		}
		if done {
			return true
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(delay*2, 20*time.Millisecond)
	}
}
