package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

// TestOutboxRelayBehindPgBouncerFindsNotificationsDoNotArriveAndPolls runs
// publishers and a relay (LISTEN left on) through PgBouncer in transaction
// mode: the relay's probe notification never comes back, so it reports
// Listening false with the reason, and delivers by polling.
func TestOutboxRelayBehindPgBouncerFindsNotificationsDoNotArriveAndPolls(t *testing.T) {
	t.Parallel()
	bin := pgbouncerBin(t)
	direct := dbtest.NewURL(t, dbtest.WithMigrations(outbox.Migrations()))
	bounced := startPgBouncer(t, bin, direct)
	cfg, err := pgxpool.ParseConfig(bounced)
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec // PgBouncer < 1.21 keeps no prepared statements
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	delivered := make(chan outbox.Event, 4)
	r, err := outbox.NewRelay(pool, outbox.SinkFunc(func(_ context.Context, e outbox.Event) error {
		delivered <- e
		return nil
	}), outbox.WithPollInterval(50*time.Millisecond), outbox.WithWorkers(1))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	require.Eventually(t, func() bool {
		h, _ := r.Health(t.Context())
		return strings.Contains(h.ListenErr, "the probe notification did not arrive")
	}, 30*time.Second, 20*time.Millisecond, "the relay never found that notifications do not arrive")

	u := uow.New(pool, func(d uow.DBTX) uow.DBTX { return d })
	require.NoError(t, u.Do(t.Context(), func(ctx context.Context, _ uow.DBTX) error {
		return outbox.Publish(ctx, "t", "k", []byte("through pgbouncer"))
	}))
	select {
	case e := <-delivered:
		require.Equal(t, "through pgbouncer", string(e.Payload))
	case <-time.After(30 * time.Second):
		t.Fatal("the event was not delivered by polling")
	}
	h, _ := r.Health(t.Context())
	require.False(t, h.Listening)
	require.Eventually(t, func() bool {
		var n int
		_ = pool.QueryRow(t.Context(), "SELECT count(*) FROM outbox_events WHERE state = 'delivered'").Scan(&n)
		return n == 1
	}, 30*time.Second, 20*time.Millisecond)
}
