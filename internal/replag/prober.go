package replag

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Status is what a probe learned of one replica.
type Status struct {
	Healthy  bool   // the probe succeeded and the server is a standby
	Err      error  // why not (nil when Healthy)
	Replayed uint64 // the replay position
	LagBytes int64  // WAL the primary had written past Replayed
	Lag      time.Duration
	ProbedAt time.Time
}

// ErrNotProbed is the Err of a replica no probe has answered for yet.
var ErrNotProbed = errors.New("replica not probed yet")

// Prober measures the lag of the replicas of one primary: each Probe reads
// the primary's insert position into a History, then each replica's replay
// position. Start runs Probe at once and then every interval until Close.
// It is safe for concurrent use.
type Prober struct {
	primary  *pgxpool.Pool
	replicas []*pgxpool.Pool
	interval time.Duration
	timeout  time.Duration
	statuses []atomic.Pointer[Status]

	mu      sync.Mutex // serialises probe rounds; guards history
	history *History

	started atomic.Bool
	stop    context.CancelFunc
	done    chan struct{}
	closed  sync.Once
}

// NewProber returns a prober measuring lags up to window, probing every
// interval once started; each probe query is bounded by timeout.
func NewProber(primary *pgxpool.Pool, replicas []*pgxpool.Pool, window, interval, timeout time.Duration) *Prober {
	return &Prober{
		primary: primary, replicas: replicas, interval: interval, timeout: timeout,
		statuses: make([]atomic.Pointer[Status], len(replicas)),
		history:  NewHistory(window + 2*interval),
	}
}

// Start runs the probe loop in a goroutine of its own, until Close.
func (p *Prober) Start() {
	if !p.started.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop, p.done = cancel, make(chan struct{})
	go p.run(ctx)
}

// Close stops the probe loop and waits for it; the statuses are forgotten
// (Status returns nil). Safe to call more than once, and without Start.
func (p *Prober) Close() {
	p.closed.Do(func() {
		if p.started.Load() {
			p.stop()
			<-p.done
		}
		for i := range p.statuses {
			p.statuses[i].Store(nil)
		}
	})
}

func (p *Prober) run(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		_ = p.Probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Status returns the last status of replica i, nil before its first probe.
func (p *Prober) Status(i int) *Status { return p.statuses[i].Load() }

// MarkDown marks replica i down with err until its next probe, when it was
// healthy: a caller lost a connection to it.
func (p *Prober) MarkDown(i int, err error) {
	last := p.statuses[i].Load()
	if last == nil || !last.Healthy {
		return
	}
	down := *last
	down.Healthy, down.Err = false, err
	p.statuses[i].CompareAndSwap(last, &down)
}

// Probe runs one round now and returns the primary's error, if any; a
// replica's goes into its status. Without the primary's position a healthy
// replica keeps the lag of its last status, so that reads survive a primary
// that is down.
func (p *Prober) Probe(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	var text string
	err := p.primary.QueryRow(pctx, InsertLSNSQL).Scan(&text)
	cancel()
	now := time.Now()
	var primary uint64
	if err == nil {
		primary, err = ParseLSN(text)
	}
	if err != nil {
		err = fmt.Errorf("probe the primary: %w", err)
	} else {
		p.history.Add(now, primary)
	}
	var wg sync.WaitGroup
	for i := range p.replicas {
		wg.Go(func() { p.probeReplica(ctx, i, err == nil, primary) })
	}
	wg.Wait()
	return err
}

// probeReplica runs with p.mu held by Probe: it only reads the history.
func (p *Prober) probeReplica(ctx context.Context, i int, primaryOK bool, primary uint64) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	st := &Status{ProbedAt: time.Now()}
	var (
		inRecovery bool
		text       string
	)
	err := p.replicas[i].QueryRow(ctx, ReplaySQL).Scan(&inRecovery, &text)
	if err == nil {
		st.Replayed, err = ParseLSN(text)
	}
	switch {
	case err != nil:
		st.Err = fmt.Errorf("probe replica %d: %w", i, err)
	case !inRecovery:
		st.Err = fmt.Errorf("probe replica %d: the server is not a standby (promoted?): it no longer follows the primary", i)
	case !primaryOK:
		st.Healthy = true
		if last := p.statuses[i].Load(); last != nil {
			st.Lag, st.LagBytes = last.Lag, last.LagBytes
		}
	default:
		st.Healthy = true
		if primary > st.Replayed {
			st.LagBytes = int64(primary - st.Replayed)
		}
		st.Lag = p.history.Lag(st.Replayed, st.ProbedAt)
	}
	p.statuses[i].Store(st)
}
