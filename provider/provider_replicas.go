package provider

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/metric"

	"github.com/cortexerp/datalayer/internal/replag"
)

// This file holds the replicas' lag: a prober per database with replicas
// (internal/replag, the measure uow.ReplicaSet routes by), reported by
// Health and exported as metrics.

// startLag starts the lag prober of db when it has replicas, and registers
// its metrics when a meter provider was given.
func (db *DB) startLag(o *options) error {
	if len(db.replicas) == 0 {
		return nil
	}
	db.lag = replag.NewProber(db.Pool(), db.Replicas(), db.cfg.ReplicaMaxLag, db.cfg.ReplicaProbeInterval, db.cfg.ConnectTimeout)
	db.lag.Start()
	if o.meterProvider == nil {
		return nil
	}
	reg, err := registerLagMetrics(o.meterProvider.Meter("github.com/cortexerp/datalayer/provider"), db)
	if err != nil {
		return fmt.Errorf("record replica lag: %w", err)
	}
	db.lagMetrics = reg
	return nil
}

// stopLag stops db's prober and unregisters its metrics.
func (db *DB) stopLag() {
	if db.lagMetrics != nil {
		_ = db.lagMetrics.Unregister()
	}
	if db.lag != nil {
		db.lag.Close()
	}
}

// registerLagMetrics exports, per replica pool (db.client.connection.pool.name
// "main/replica-0"), the last probe's db.replica.lag (seconds),
// db.replica.lag_bytes and db.replica.healthy (1 or 0). A replica not probed
// yet is left out.
func registerLagMetrics(m metric.Meter, db *DB) (metric.Registration, error) {
	lag, err1 := m.Float64ObservableGauge("db.replica.lag", metric.WithUnit("s"),
		metric.WithDescription("How far the replica is behind its primary, in time, measured from WAL positions"))
	lagBytes, err2 := m.Int64ObservableGauge("db.replica.lag_bytes", metric.WithUnit("By"),
		metric.WithDescription("WAL the primary had written past the replica's replay position"))
	healthy, err3 := m.Int64ObservableGauge("db.replica.healthy",
		metric.WithDescription("1 when the replica's last probe succeeded and it is a standby, else 0"))
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return nil, err
		}
	}
	return m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		for i, pl := range db.replicas {
			st := db.lag.Status(i)
			if st == nil {
				continue
			}
			attrs := metric.WithAttributes(poolAttr(pl.name))
			up := int64(0)
			if st.Healthy {
				up = 1
				obs.ObserveFloat64(lag, st.Lag.Seconds(), attrs)
				obs.ObserveInt64(lagBytes, st.LagBytes, attrs)
			}
			obs.ObserveInt64(healthy, up, attrs)
		}
		return nil
	}, lag, lagBytes, healthy)
}

// probeLags runs a fresh probe round of every database with replicas, for
// Health.
func (p *Provider) probeLags(ctx context.Context) {
	var wg sync.WaitGroup
	for _, db := range p.dbs {
		if db.lag != nil {
			wg.Go(func() { _ = db.lag.Probe(ctx) })
		}
	}
	wg.Wait()
}

// fillLag adds replica i of db's lag to its check c.
func (db *DB) fillLag(c *Check, i int) {
	if db.lag == nil {
		return
	}
	st := db.lag.Status(i)
	if st == nil || !st.Healthy {
		return
	}
	c.ReplayLSN = replag.FormatLSN(st.Replayed)
	c.LagBytes = st.LagBytes
	c.Lag = st.Lag
	c.LagMS = float64(st.Lag.Microseconds()) / 1000
	c.WithinMaxLag = st.Lag <= db.cfg.ReplicaMaxLag
}
