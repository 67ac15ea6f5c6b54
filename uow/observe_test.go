package uow_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/uow"
)

func TestSpansAndLogs(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	u := uow.New(pool, newStore, uow.WithTracerProvider(tp), uow.WithLogger(logger))

	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		if err := q.put(ctx, 1, "a"); err != nil {
			return err
		}
		_ = u.Do(ctx, func(ctx context.Context, q *store) error { return errBoom }, uow.Name("coupon"))
		_, err := q.db.Exec(ctx, "SELECT fail_first($1, '40001')", uow.Attempt(ctx))
		return err
	}, uow.Name("place-order"), uow.Retry(uow.DefaultRetry))
	require.NoError(t, err)

	spans := exporter.GetSpans()
	var names, outcomes []string
	for _, s := range spans {
		names = append(names, s.Name)
		for _, a := range s.Attributes {
			if a.Key == "uow.outcome" {
				outcomes = append(outcomes, a.Value.AsString())
			}
		}
	}
	require.Equal(t, []string{
		"uow.Savepoint coupon", "uow.Do place-order", // attempt 1: serialization failure
		"uow.Savepoint coupon", "uow.Do place-order", // attempt 2: committed
	}, names)
	require.Equal(t, []string{"rollback", "rollback", "rollback", "commit"}, outcomes)
	require.Contains(t, logs.String(), "uow: retrying")
	require.Contains(t, logs.String(), "name=place-order")
}

func TestReadOnlyGoesToAReplica(t *testing.T) {
	t.Parallel()
	primary, _ := newDB(t)
	// The "replica" is another database, so the test can tell where a read went.
	replica, _ := newDB(t)
	_, err := replica.Exec(t.Context(), "INSERT INTO items VALUES (99, 'on the replica')")
	require.NoError(t, err)
	u := uow.New(primary, newStore, uow.WithReplicas(replica))

	read := func() int {
		n, err := uow.DoResult(t.Context(), u, func(ctx context.Context, q *store) (int, error) { return q.count(ctx) }, uow.ReadOnly())
		require.NoError(t, err)
		return n
	}
	require.Equal(t, 1, read(), "a ReadOnly unit of work reads the replica")
	require.NoError(t, u.Do(t.Context(), func(ctx context.Context, q *store) error { return q.put(ctx, 1, "primary") }))
	require.Equal(t, []int{1}, ids(t, primary), "a read-write unit of work writes the primary")

	down, err := pgxpool.New(t.Context(), dbtest.NewURL(t, dbtest.WithoutMigrations()))
	require.NoError(t, err)
	down.Close() // a replica that cannot give a connection
	u = uow.New(primary, newStore, uow.WithReplicas(down))
	require.Equal(t, 1, read(), "falls back to the primary")
	requireIdle(t, primary)
}
