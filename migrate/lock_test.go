package migrate_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3/lock"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/migrate"
)

// TestCancelledUpHasReleasedTheLockWhenItReturns cancels Up while a migration
// waits inside its transaction. pgx closes a connection whose query was
// interrupted in the background, sending the server a cancel request first;
// until the server has ended that session, it still runs the statement and
// holds the migration lock. Up must not return before that: a CLI exits as
// soon as Up returns (SIGTERM), and would otherwise leave the session behind.
func TestCancelledUpHasReleasedTheLockWhenItReturns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dbURL := emptyDB(t)
	const gateKey = 80080002

	gate, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = gate.Close(context.WithoutCancel(ctx)) })
	_, err = gate.Exec(ctx, "SELECT pg_advisory_lock($1)", gateKey)
	require.NoError(t, err)

	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set("application_name", "cancelled-up")
	u.RawQuery = q.Encode()
	m, err := migrate.Open(ctx, u.String(), files(
		"00001_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_gated.sql", "-- +goose Up\nCREATE TABLE b (id int);\nSELECT pg_advisory_xact_lock(80080002);\n-- +goose Down\nDROP TABLE b;\n",
	), migrate.WithLockTimeout(0))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })

	upCtx, stop := context.WithCancel(ctx)
	type upResult struct {
		rs  []migrate.Result
		err error
	}
	done := make(chan upResult, 1)
	go func() {
		rs, err := m.Up(upCtx)
		done <- upResult{rs, err}
	}()

	// The server reports the migration session waiting for the gate.
	gatePID := int32(gate.PgConn().PID())
	d := sqlDB(t, dbURL)
	require.Eventually(t, func() bool {
		var n int
		err := d.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'cancelled-up' AND $1 = ANY (pg_blocking_pids(pid))`, gatePID).Scan(&n)
		return err == nil && n == 1
	}, 30*time.Second, 10*time.Millisecond, "the migration never waited at the gate")

	stop()
	r := <-done
	require.ErrorIs(t, r.err, context.Canceled)
	require.Len(t, r.rs, 1, "version 1 was applied before")

	// At once, no polling: the session is gone, its lock with it.
	var sessions, holders int
	require.NoError(t, d.QueryRowContext(ctx,
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cancelled-up'").Scan(&sessions))
	require.Zero(t, sessions, "the migration session has ended")
	require.NoError(t, d.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		lock.DefaultLockID).Scan(&holders))
	require.Zero(t, holders, "nobody holds the migration lock")
	require.Equal(t, []int64{1}, appliedVersions(t, d))
	require.False(t, tableExists(t, d, "b"), "version 2 was rolled back")
}
