package demo_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/erp/demo"
	"github.com/cortexerp/datalayer/internal/localnats"
	"github.com/cortexerp/datalayer/internal/localnats/localnatstest"
)

func TestRunMigratesSeedsAndReportsOnTheGivenServer(t *testing.T) {
	t.Parallel()
	_, noNATS := localnats.Binary()
	if noNATS != nil && os.Getenv("CI") == "true" {
		t.Fatalf("%v; CI=true: the demo must deliver to JetStream in CI", noNATS)
	}
	cfg := demo.Config{
		Options:     demo.Options{Orders: 60, Workers: 4, Relays: 2, Seed: 9},
		DatabaseURL: dbtest.NewURL(t, dbtest.WithoutMigrations()),
	}
	var out strings.Builder
	require.NoError(t, demo.Run(t.Context(), cfg, &out))

	report := out.String()
	want := []string{
		"using the server of DATABASE_URL",
		"migrated to version 9 (9 applied), and the outbox's tables",
		"seeded 20 customers, 50 products",
		"60/60 orders",
		"on hand + sold = initial for every product ✓",
		"one per placement, payment and cancellation ✓",
		"each event processed exactly once ✓",
	}
	if noNATS == nil {
		want = append(want, "started nats-server (nats://127.0.0.1:", "one per event ✓", "stopped nats-server")
	} else {
		want = append(want, "JetStream: skipped (nats-server not found")
	}
	for _, w := range want {
		require.Contains(t, report, w)
	}
	require.Regexp(t, `\n  sum +0\.00   ✓\n`, report)
	require.Regexp(t, `\n  marks lost on purpose +[1-9]\d* `, report)
	require.Regexp(t, `\n  pending +0   ✓\n`, report)
	require.NotContains(t, report, "stopped PostgreSQL", "a server it did not start is left alone")
	require.NotContains(t, report, "BROKEN")

	// A second run on the same database migrates nothing and seeds anew.
	out.Reset()
	require.NoError(t, demo.Run(t.Context(), cfg, &out))
	require.Contains(t, out.String(), "migrated to version 9 (0 applied)")
	require.Contains(t, out.String(), "one per placement, payment and cancellation ✓", "only this run's events are counted")
}

func TestRunDeliversToTheJetStreamOfNATSURL(t *testing.T) {
	t.Parallel()
	srv := localnatstest.Start(t)
	cfg := demo.Config{
		Options:     demo.Options{Orders: 30, Workers: 2, Relays: 1, Seed: 4, LoseMarks: 3},
		DatabaseURL: dbtest.NewURL(t, dbtest.WithoutMigrations()),
		NATSURL:     srv.URL(),
	}
	var out strings.Builder
	require.NoError(t, demo.Run(t.Context(), cfg, &out))
	report := out.String()
	require.Contains(t, report, "using the NATS server of NATS_URL")
	require.Contains(t, report, "one per event ✓")
	require.NotContains(t, report, "stopped nats-server", "a server it did not start is left alone")
	require.NotContains(t, report, "BROKEN")
}

func TestRunRefusesABadConfig(t *testing.T) {
	t.Parallel()
	err := demo.Run(t.Context(), demo.Config{Options: demo.Options{Orders: 10, Workers: 0, Relays: 1}}, new(strings.Builder))
	require.EqualError(t, err, "-workers 0 must be positive")
}

func TestRunKeepsTheNATSPasswordOutOfItsError(t *testing.T) {
	t.Parallel()
	cfg := demo.Config{
		Options:     demo.Options{Orders: 1, Workers: 1, Relays: 1},
		DatabaseURL: dbtest.NewURL(t, dbtest.WithoutMigrations()),
		NATSURL:     "nats://bob:s3cret-pw@127.0.0.1:1",
	}
	err := demo.Run(t.Context(), cfg, new(strings.Builder))
	require.ErrorContains(t, err, "connect to NATS: ")
	require.NotContains(t, err.Error(), "s3cret-pw")
	require.NotContains(t, fmt.Sprintf("%+v", err), "s3cret-pw")
}
