//go:build unix

package localpg_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/localpg"
)

// TestStandbyStreamsHaltsResumesAndStopLeavesNothing runs one primary with
// two standbys, one slowed down on purpose, through the life of a replica.
func TestStandbyStreamsHaltsResumesAndStopLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s, err := localpg.Start(ctx, binaries)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	primary := connect(t, s.URL())
	_, err = primary.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
	require.NoError(t, err)

	began := time.Now()
	fast, err := s.StartStandby(ctx)
	require.NoError(t, err)
	t.Logf("standby ready after %v: %v", time.Since(began), fast)
	const delay = 1500 * time.Millisecond
	slow, err := s.StartStandby(ctx, localpg.ApplyDelay(delay))
	require.NoError(t, err)
	require.Equal(t, []*localpg.Standby{fast, slow}, s.Standbys())
	require.Equal(t, "localpg_standby_2", slow.Slot())

	count := func(url string) (n int) {
		t.Helper()
		require.NoError(t, connect(t, url).QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n))
		return n
	}
	var inRecovery bool
	require.NoError(t, connect(t, fast.URL()).QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	require.True(t, inRecovery, "a standby is in recovery")
	require.Equal(t, 1, count(fast.URL()), "a standby starts with what the primary committed before")
	var slots []string
	require.NoError(t, primary.QueryRow(ctx,
		"SELECT array_agg(slot_name::text ORDER BY slot_name) FROM pg_replication_slots WHERE active").Scan(&slots))
	require.Equal(t, []string{"localpg_standby_1", "localpg_standby_2"}, slots)
	_, err = connect(t, fast.URL()).Exec(ctx, "INSERT INTO t VALUES (2)")
	require.ErrorContains(t, err, "read-only transaction", "a standby refuses writes")

	committed := time.Now()
	_, err = primary.Exec(ctx, "INSERT INTO t VALUES (2)")
	require.NoError(t, err)
	require.NoError(t, fast.CatchUp(ctx))
	require.Equal(t, 2, count(fast.URL()), "CatchUp returns once the commit is visible")
	require.Equal(t, 1, count(slow.URL()), "the delayed standby has not applied it yet")
	require.NoError(t, slow.CatchUp(ctx))
	require.Equal(t, 2, count(slow.URL()))
	require.GreaterOrEqual(t, time.Since(committed), delay, "the delayed standby applied the commit after its delay")

	require.NoError(t, fast.Halt(ctx))
	_, err = pgx.Connect(ctx, fast.URL())
	require.Error(t, err, "connect to a halted standby")
	_, err = primary.Exec(ctx, "INSERT INTO t VALUES (3)")
	require.NoError(t, err)
	require.NoError(t, fast.Resume(ctx))
	require.NoError(t, fast.CatchUp(ctx))
	require.Equal(t, 3, count(fast.URL()), "a resumed standby streams what it missed")

	_, dataDir := facts(t, slow.URL())
	require.NoError(t, slow.Stop(ctx))
	require.NoDirExists(t, filepath.Dir(dataDir))
	require.NoError(t, primary.QueryRow(ctx,
		"SELECT array_agg(slot_name::text) FROM pg_replication_slots").Scan(&slots))
	require.Equal(t, []string{"localpg_standby_1"}, slots, "Stop drops the standby's slot")
	require.Equal(t, []*localpg.Standby{fast}, s.Standbys())

	fastPid, fastDir := facts(t, fast.URL())
	require.NoError(t, s.Stop(ctx))
	require.False(t, alive(fastPid), "the primary's Stop stops its standbys")
	require.NoDirExists(t, filepath.Dir(fastDir))
	require.ErrorIs(t, fast.Halt(ctx), localpg.ErrStopped)
	_, err = s.StartStandby(ctx)
	require.ErrorIs(t, err, localpg.ErrStopped)
}

func TestStandbyPromotes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s := start(t, binaries)
	sb, err := s.StartStandby(ctx)
	require.NoError(t, err)
	require.NoError(t, sb.Promote(ctx))
	conn := connect(t, sb.URL())
	var inRecovery bool
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	require.False(t, inRecovery)
	_, err = conn.Exec(ctx, "CREATE TABLE after_promotion (v int)")
	require.NoError(t, err, "a promoted standby takes writes")
	require.ErrorContains(t, sb.CatchUp(ctx), "promoted")
}

// TestStandbyOfAServerNotStartedFromBinariesIsNotSupported is not parallel:
// it sets DATABASE_URL.
func TestStandbyOfAServerNotStartedFromBinariesIsNotSupported(t *testing.T) {
	backing := start(t, binaries)
	t.Setenv("DATABASE_URL", backing.URL())
	s, err := localpg.Start(t.Context(), localpg.WithSources(localpg.SourceEnv))
	require.NoError(t, err)
	_, err = s.StartStandby(t.Context())
	require.ErrorIs(t, err, localpg.ErrNotSupported)
	require.ErrorContains(t, err, "WithSources(SourceBinaries)")
	_, err = backing.StartStandby(t.Context(), localpg.ApplyDelay(-time.Second), nil)
	require.EqualError(t, err, "localpg: ApplyDelay(-1s): must not be negative\nlocalpg: StandbyOption must not be nil")
}
