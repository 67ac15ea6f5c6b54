package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cortexerp/datalayer/internal/secret"
)

// Report is the result of Health: one Check per database primary and
// replica, in DB_NAMES order. It is a plain value, safe to read from several
// goroutines.
type Report struct {
	// OK is true when every check is.
	OK bool `json:"ok"`
	// Checks holds one entry per pool.
	Checks []Check `json:"checks"`
}

// Check is the health of one pool, a plain value like Report.
type Check struct {
	// Database is the name from DB_NAMES.
	Database string `json:"database"`
	// Role is "primary" or "replica".
	Role string `json:"role"`
	// Replica is the index in DB_<NAME>_REPLICA_URLS; -1 for a primary.
	Replica int `json:"replica"`
	// Target is user@host:port/dbname (never a password).
	Target string `json:"target"`
	// OK is true when the server answered.
	OK bool `json:"ok"`
	// Latency is how long the check took.
	Latency time.Duration `json:"-"`
	// LatencyMS is Latency in milliseconds, for JSON.
	LatencyMS float64 `json:"latency_ms"`
	// Error says why the check failed (empty when OK).
	Error string `json:"error,omitempty"`
	// ServerVersion is the server's server_version (when OK).
	ServerVersion string `json:"server_version,omitempty"`
	// InRecovery is pg_is_in_recovery(): true on a standby (when OK).
	InRecovery bool `json:"in_recovery"`
	// Pool holds the pool's statistics.
	Pool PoolStats `json:"pool"`

	// The replica's lag, measured as uow.ReplicaSet measures it (in time,
	// from the primary's WAL positions: see docs/SCALING.md) by a probe run
	// with the check; zero for a primary, and for a replica whose probe failed.

	// ReplayLSN is the replica's replay position ("16/B374D848").
	ReplayLSN string `json:"replay_lsn,omitempty"`
	// LagBytes is how much WAL the primary had written past ReplayLSN.
	LagBytes int64 `json:"lag_bytes,omitempty"`
	// Lag is how far behind the primary the replica is, in time.
	Lag time.Duration `json:"-"`
	// LagMS is Lag in milliseconds, for JSON.
	LagMS float64 `json:"lag_ms,omitempty"`
	// WithinMaxLag is true when Lag is within DB_<NAME>_REPLICA_MAX_LAG, so
	// that a uow.ReplicaSet with that bound sends reads to this replica. A
	// replica past it stays OK: reads go to the primary meanwhile.
	WithinMaxLag bool `json:"within_max_lag,omitempty"`
}

// PoolStats is a snapshot of a pool's pgxpool.Stat, a plain value like
// Report.
type PoolStats struct {
	// MaxConns is the pool's size limit.
	MaxConns int32 `json:"max_conns"`
	// TotalConns counts open and opening connections.
	TotalConns int32 `json:"total_conns"`
	// IdleConns counts connections waiting in the pool.
	IdleConns int32 `json:"idle_conns"`
	// AcquiredConns counts connections in use.
	AcquiredConns int32 `json:"acquired_conns"`
	// ConstructingConns counts connections being opened.
	ConstructingConns int32 `json:"constructing_conns"`
	// AcquireCount counts successful acquires since the pool opened.
	AcquireCount int64 `json:"acquire_count"`
	// EmptyAcquireCount counts acquires that had to wait for a connection.
	EmptyAcquireCount int64 `json:"empty_acquire_count"`
	// CanceledAcquireCount counts acquires abandoned by their ctx.
	CanceledAcquireCount int64 `json:"canceled_acquire_count"`
	// NewConnsCount counts connections opened since the pool opened.
	NewConnsCount int64 `json:"new_conns_count"`
}

// Health checks every pool at once with a query of the server's version and
// recovery state, each bounded by ctx and by its database's
// CONNECT_TIMEOUT; meanwhile it measures every replica's lag. After Close
// has begun every check fails with ErrClosed.
func (p *Provider) Health(ctx context.Context) Report {
	var pools []*pool
	for _, db := range p.dbs {
		pools = append(pools, db.pools()...)
	}
	r := Report{OK: true, Checks: make([]Check, len(pools))}
	closing := p.closing.Load()
	var wg sync.WaitGroup
	for i, pl := range pools {
		wg.Go(func() { r.Checks[i] = pl.check(ctx, closing) })
	}
	if !closing {
		wg.Go(func() { p.probeLags(ctx) })
	}
	wg.Wait()
	if !closing {
		k := 0
		for _, db := range p.dbs {
			for _, pl := range db.pools() {
				if pl.replica >= 0 && r.Checks[k].OK {
					db.fillLag(&r.Checks[k], pl.replica)
				}
				k++
			}
		}
	}
	for _, c := range r.Checks {
		r.OK = r.OK && c.OK
	}
	return r
}

func (pl *pool) check(ctx context.Context, closing bool) Check {
	cc := pl.pool.Config().ConnConfig
	c := Check{
		Database: pl.cfg.Name,
		Role:     "primary",
		Replica:  -1,
		Target:   fmt.Sprintf("%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database),
	}
	if pl.replica >= 0 {
		c.Role, c.Replica = "replica", pl.replica
	}
	start := time.Now()
	var err error
	if closing {
		err = pl.errClosed()
	} else {
		ctx, cancel := context.WithTimeout(ctx, pl.cfg.ConnectTimeout)
		defer cancel()
		// A connection that died while idle (a network error, or FATAL when
		// the server shut down) fails the first try; the second runs on a
		// fresh connection.
		for range 2 {
			err = pl.pool.QueryRow(ctx, "SELECT current_setting('server_version'), pg_is_in_recovery()").
				Scan(&c.ServerVersion, &c.InRecovery)
			var pgErr *pgconn.PgError
			if err == nil || ctx.Err() != nil || errors.Is(err, ErrClosed) ||
				(errors.As(err, &pgErr) && pgErr.Severity != "FATAL") {
				break
			}
		}
	}
	c.Latency = time.Since(start)
	c.LatencyMS = float64(c.Latency.Microseconds()) / 1000
	if err != nil {
		c.Error = secret.Error(err).Error()
		c.ServerVersion, c.InRecovery = "", false
	} else {
		c.OK = true
	}
	s := pl.pool.Stat()
	c.Pool = PoolStats{
		MaxConns:             s.MaxConns(),
		TotalConns:           s.TotalConns(),
		IdleConns:            s.IdleConns(),
		AcquiredConns:        s.AcquiredConns(),
		ConstructingConns:    s.ConstructingConns(),
		AcquireCount:         s.AcquireCount(),
		EmptyAcquireCount:    s.EmptyAcquireCount(),
		CanceledAcquireCount: s.CanceledAcquireCount(),
		NewConnsCount:        s.NewConnsCount(),
	}
	return c
}

// HealthHandler serves Health as JSON, for readiness probes: 200 when every
// check is OK, 503 otherwise (including after Close has begun). The
// request's context bounds the checks.
func (p *Provider) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := p.Health(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if rep.OK {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
}
