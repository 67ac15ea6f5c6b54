package demo_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/erp/demo"
)

func TestRunMigratesSeedsAndReportsOnTheGivenServer(t *testing.T) {
	t.Parallel()
	cfg := demo.Config{
		Options:     demo.Options{Orders: 60, Workers: 4, Publishers: 2, Seed: 9},
		DatabaseURL: dbtest.NewURL(t, dbtest.WithoutMigrations()),
	}
	var out strings.Builder
	require.NoError(t, demo.Run(t.Context(), cfg, &out))

	report := out.String()
	for _, want := range []string{
		"using the server of DATABASE_URL",
		"migrated to version 8 (8 applied)",
		"seeded 20 customers, 50 products",
		"60/60 orders",
		"on hand + sold = initial for every product ✓",
		"each exactly once ✓",
	} {
		require.Contains(t, report, want)
	}
	require.Regexp(t, `\n  sum +0\.00   ✓\n`, report)
	require.NotContains(t, report, "stopped PostgreSQL", "a server it did not start is left alone")

	// A second run on the same database migrates nothing and seeds anew.
	out.Reset()
	require.NoError(t, demo.Run(t.Context(), cfg, &out))
	require.Contains(t, out.String(), "migrated to version 8 (0 applied)")
}

func TestRunRefusesABadConfig(t *testing.T) {
	t.Parallel()
	err := demo.Run(t.Context(), demo.Config{Options: demo.Options{Orders: 10, Workers: 0, Publishers: 1}}, new(strings.Builder))
	require.EqualError(t, err, "-workers 0 must be positive")
}
