package integration

// The example's workload behind PgBouncer: make remove-example takes this
// file out with the example; pgbouncer_test.go keeps PgBouncer's helpers and
// cmd/migrate -pgbouncer.

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/erp"
	"github.com/cortexerp/datalayer/erp/demo"
)

// TestBehindPgBouncer runs the demo's concurrent workload through PgBouncer in
// transaction pooling mode, in each exec mode that works there (the default
// statement cache does not before PgBouncer 1.21), then checks the invariants
// on the database directly. TestMigrateBehindPgBouncer is its part that
// needs no example.
func TestBehindPgBouncer(t *testing.T) {
	t.Parallel()
	bin := pgbouncerBin(t)
	modes := map[string]pgx.QueryExecMode{
		"exec":            pgx.QueryExecModeExec,
		"simple_protocol": pgx.QueryExecModeSimpleProtocol,
		"cache_describe":  pgx.QueryExecModeCacheDescribe,
	}
	for name, mode := range modes {
		t.Run("workload in exec mode "+name, func(t *testing.T) {
			t.Parallel()
			direct := dbtest.NewURL(t, withOutbox)
			cfg, err := pgxpool.ParseConfig(startPgBouncer(t, bin, direct))
			require.NoError(t, err)
			cfg.ConnConfig.DefaultQueryExecMode = mode
			cfg.MaxConns = 20
			bounced, err := pgxpool.NewWithConfig(t.Context(), cfg)
			require.NoError(t, err)
			t.Cleanup(bounced.Close)

			svc, err := erp.New(bounced)
			require.NoError(t, err)
			res, err := demo.Simulate(t.Context(), svc, demo.Options{Orders: 120, Workers: 6, Seed: 7})
			require.NoError(t, err)

			pool, err := pgxpool.New(t.Context(), direct)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			checkInvariants(t, pool, []demo.Result{res})
		})
	}
}
