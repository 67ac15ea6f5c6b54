package uow

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	replicas []*pgxpool.Pool
	cfg      replicaConfig
	prober   *replag.Prober // nil for WithReplicas: statuses unknown, every replica tried
	next     atomic.Uint64
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
	timeout := min(max(cfg.interval, time.Second), 5*time.Second)
	rs := newReplicaSet(primary, replicas, cfg)
	rs.prober = replag.NewProber(primary, rs.replicas, cfg.maxLag, cfg.interval, timeout)
	rs.prober.Start()
	return rs, nil
}

// Close stops the prober and waits for it to return. The pools stay open:
// they belong to the caller. Units of work routed by a closed set go to the
// primary. Close is safe to call more than once.
func (rs *ReplicaSet) Close() {
	if rs.prober != nil {
		rs.prober.Close()
	}
}

// Status returns what the last probe learned of each replica, in the order
// the pools were given; a replica not probed yet has ProbedAt zero and is
// not healthy. A set made by WithReplicas probes nothing: its replicas are
// never probed.
func (rs *ReplicaSet) Status() []ReplicaStatus {
	out := make([]ReplicaStatus, len(rs.replicas))
	for i := range rs.replicas {
		var st *replag.Status
		if rs.prober != nil {
			st = rs.prober.Status(i)
		}
		if st == nil {
			out[i] = ReplicaStatus{Index: i, Err: fmt.Errorf("uow: replica %d: %w", i, replag.ErrNotProbed)}
			continue
		}
		out[i] = ReplicaStatus{Index: i, Healthy: st.Healthy, Replayed: Token{lsn: st.Replayed},
			LagBytes: st.LagBytes, Lag: st.Lag, ProbedAt: st.ProbedAt}
		if st.Err != nil {
			out[i].Err = fmt.Errorf("uow: %w", st.Err)
		}
	}
	return out
}

// Probe runs one probe round now: it reads the primary's WAL insert position,
// then each replica's replay position, and updates [ReplicaSet.Status]. The
// prober calls it every ReplicaProbeInterval; a caller that needs fresh
// statuses (a test, a readiness check) may call it too. It returns the
// primary's error, if any; a replica's goes into its status.
func (rs *ReplicaSet) Probe(ctx context.Context) error {
	if rs.prober == nil {
		return nil
	}
	if err := rs.prober.Probe(ctx); err != nil {
		return fmt.Errorf("uow: %w", err)
	}
	return nil
}

// newReplicaSet is the set WithReplicas makes (no prober), and the one
// NewReplicaSet starts a prober for.
func newReplicaSet(primary *pgxpool.Pool, pools []*pgxpool.Pool, cfg replicaConfig) *ReplicaSet {
	return &ReplicaSet{primary: primary, replicas: slices.Clone(pools), cfg: cfg}
}

// eligible reports whether replica i may take a unit of work, and whether
// it has replayed tok.
func (rs *ReplicaSet) eligible(i int, tok Token) (ok, replayed bool) {
	if rs.prober == nil {
		return true, tok.lsn == 0
	}
	st := rs.prober.Status(i)
	if st == nil || !st.Healthy || st.Lag > rs.cfg.maxLag {
		return false, false
	}
	return true, st.Replayed >= tok.lsn
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
	start, n := rs.next.Add(1), uint64(len(rs.replicas))
	behind := -1
	for k := range n {
		i := int((start + k) % n)
		ok, replayed := rs.eligible(i, tok)
		if !ok {
			continue
		}
		if !replayed {
			if behind < 0 {
				behind = i
			}
			continue
		}
		if c := rs.acquireFrom(ctx, i); c != nil {
			return c, rs.replicas[i]
		}
	}
	if behind < 0 || rs.cfg.tokenWait == 0 {
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
	return c, rs.replicas[behind]
}

// acquireFrom takes a connection of replica i, marking it down when it
// cannot give one.
func (rs *ReplicaSet) acquireFrom(ctx context.Context, i int) *pgxpool.Conn {
	c, err := rs.replicas[i].Acquire(ctx)
	if err == nil {
		return c
	}
	if ctx.Err() == nil {
		rs.markDownAt(i, fmt.Errorf("acquire: %w", err))
	}
	return nil
}

// markDown marks the replica of pool down until its next probe: a unit of
// work lost its connection there with err. A set without a prober tries
// every replica each time instead.
func (rs *ReplicaSet) markDown(pool *pgxpool.Pool, err error) {
	for i, p := range rs.replicas {
		if p == pool {
			rs.markDownAt(i, err)
		}
	}
}

func (rs *ReplicaSet) markDownAt(i int, err error) {
	if rs.prober != nil {
		rs.prober.MarkDown(i, fmt.Errorf("replica %d: %w", i, err))
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
