//go:build unix

package provider_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cortexerp/datalayer/localpg"
	"github.com/cortexerp/datalayer/provider"
)

func TestReplicaBoundsAreCheckedNamingTheirVariables(t *testing.T) {
	t.Parallel()
	_, err := provider.LoadConfig(map[string]string{
		"DATABASE_URL":                   "postgres://u@h/db",
		"DB_MAIN_REPLICA_MAX_LAG":        "0s",
		"DB_MAIN_REPLICA_TOKEN_WAIT":     "-1s",
		"DB_MAIN_REPLICA_PROBE_INTERVAL": "2m",
	})
	require.ErrorIs(t, err, provider.ErrConfig)
	require.ErrorContains(t, err, "DB_MAIN_REPLICA_MAX_LAG: must be positive, got 0s")
	require.ErrorContains(t, err, "DB_MAIN_REPLICA_TOKEN_WAIT: must not be negative (0 never waits), got -1s")
	require.ErrorContains(t, err, "DB_MAIN_REPLICA_PROBE_INTERVAL: must be within 10ms and 1m, got 2m0s")

	_, err = provider.LoadConfig(map[string]string{
		"DATABASE_URL":                   "postgres://u@h/db",
		"DB_MAIN_REPLICA_MAX_LAG":        "100ms",
		"DB_MAIN_REPLICA_PROBE_INTERVAL": "1s",
	})
	require.ErrorContains(t, err, "DB_MAIN_REPLICA_MAX_LAG: must be at least DB_MAIN_REPLICA_PROBE_INTERVAL (1s): lag is known to within one probe, got 100ms")

	cfg, err := provider.LoadConfig(map[string]string{"DATABASE_URL": "postgres://u@h/db"})
	require.NoError(t, err)
	db := cfg.Databases[0]
	require.Equal(t, []time.Duration{5 * time.Second, 200 * time.Millisecond, time.Second},
		[]time.Duration{db.ReplicaMaxLag, db.ReplicaTokenWait, db.ReplicaProbeInterval})
}

// TestHealthAndMetricsReportAReplicasLag runs the provider on a real
// primary and a streaming standby that applies commits a second late.
func TestHealthAndMetricsReportAReplicasLag(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv, err := localpg.Start(ctx, localpg.WithSources(localpg.SourceBinaries))
	if errors.Is(err, localpg.ErrNoServer) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true: this test must run in CI", err)
		}
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Stop(context.Background())) })
	standby, err := srv.StartStandby(ctx, localpg.ApplyDelay(time.Second))
	require.NoError(t, err)

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.WithoutCancel(t.Context()))) })
	p, err := provider.New(ctx, provider.WithLogger(slog.New(slog.DiscardHandler)), provider.WithMeterProvider(mp), provider.WithEnvironment(map[string]string{
		"DATABASE_URL":                   srv.URL(),
		"DB_MAIN_REPLICA_URLS":           standby.URL(),
		"DB_MAIN_REPLICA_PROBE_INTERVAL": "20ms",
		"DB_MAIN_REPLICA_MAX_LAG":        "1m",
	}))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(context.Background())) })
	require.Equal(t, time.Minute, p.Main().Config().ReplicaMaxLag)

	rep := p.Health(ctx)
	require.True(t, rep.OK, "%+v", rep)
	require.Len(t, rep.Checks, 2)
	primary, replica := rep.Checks[0], rep.Checks[1]
	require.Empty(t, primary.ReplayLSN, "a primary has no lag")
	require.True(t, replica.InRecovery)
	require.NotEmpty(t, replica.ReplayLSN)
	require.True(t, replica.WithinMaxLag)

	conn, err := pgx.Connect(ctx, srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, "CREATE TABLE lagging (v int); INSERT INTO lagging VALUES (1)")
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		replica = p.Health(ctx).Checks[1]
		if replica.LagBytes > 0 && replica.Lag > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no lag seen in 30s: %+v", replica)
	}
	require.True(t, replica.OK)
	require.Positive(t, replica.LagMS)
	require.True(t, replica.WithinMaxLag, "%s is within 1m", replica.Lag)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	got := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if !strings.HasPrefix(m.Name, "db.replica.") {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					name, _ := dp.Attributes.Value("db.client.connection.pool.name")
					require.Equal(t, "main/replica-0", name.AsString())
					if m.Name == "db.replica.healthy" {
						require.EqualValues(t, 1, dp.Value)
					}
					got[m.Name] = true
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					require.GreaterOrEqual(t, dp.Value, 0.0)
					got[m.Name] = true
				}
			}
		}
	}
	require.Equal(t, map[string]bool{"db.replica.healthy": true, "db.replica.lag": true, "db.replica.lag_bytes": true}, got)

	require.NoError(t, standby.Halt(ctx))
	replica = p.Health(ctx).Checks[1]
	require.False(t, replica.OK, "a stopped replica fails its check")
	require.Empty(t, replica.ReplayLSN)
}
