package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/leakcheck"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.Main(m), leakcheck.SharedServer()...)
}

// outboxCmd runs the command with DATABASE_URL=url and returns its exit
// status, stdout and stderr.
func outboxCmd(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := func(k string) string {
		if k == "DATABASE_URL" {
			return url
		}
		return ""
	}
	code := run(t.Context(), args, env, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMigrateListReplayPurge(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t, dbtest.WithoutMigrations())
	code, out, errOut := outboxCmd(t, url, "migrate")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "00001_outbox.sql")
	require.Contains(t, out, "outbox tables at version 1\n")
	code, out, _ = outboxCmd(t, url, "migrate")
	require.Equal(t, exitOK, code)
	require.Equal(t, "outbox tables at version 1\n", out, "a second run has nothing to do")

	ctx := t.Context()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	u := uow.New(pool, func(d uow.DBTX) uow.DBTX { return d })
	require.NoError(t, u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
		return outbox.PublishBatch(ctx,
			outbox.Message{Topic: "order.placed", Key: "o1", Payload: []byte("{}")},
			outbox.Message{Topic: "order.paid", Key: "o1", Payload: []byte("{}")})
	}))
	_, err = pool.Exec(ctx, `UPDATE outbox_events SET state = 'dead', dead_at = now(), attempts = 10,
		last_error = E'broker down:\nconnection refused' WHERE topic = 'order.placed'`)
	require.NoError(t, err)

	code, out, _ = outboxCmd(t, url, "status")
	require.Equal(t, exitOK, code)
	require.True(t, strings.HasPrefix(out, "pending 1 (ready 1), dead 1, oldest pending "), out)

	code, out, _ = outboxCmd(t, url, "dead", "-limit", "1")
	require.Equal(t, exitOK, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^ID +TOPIC +KEY +ATTEMPTS +DEAD AT +LAST ERROR$`, lines[0])
	require.Regexp(t, `^1 +order\.placed +o1 +10 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC +broker down: connection refused$`, lines[1])
	require.Equal(t, "more may follow: -after 1", lines[2])

	code, out, _ = outboxCmd(t, url, "replay", "1", "2", "1")
	require.Equal(t, exitOK, code)
	require.Equal(t, "replayed 1 events\n", out, "event 2 is not dead")
	var state string
	require.NoError(t, pool.QueryRow(ctx, "SELECT state FROM outbox_events WHERE id = 1").Scan(&state))
	require.Equal(t, "pending", state)

	_, err = pool.Exec(ctx, `UPDATE outbox_events SET state = 'delivered', delivered_at = now() - interval '2 days'`)
	require.NoError(t, err)
	code, out, _ = outboxCmd(t, url, "purge", "-older-than", "24h")
	require.Equal(t, exitOK, code)
	require.Equal(t, "deleted 2 events delivered more than 24h0m0s ago\n", out)
	require.Zero(t, count(t, pool, "outbox_events"))

	require.NoError(t, u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
		for id := range int64(3) {
			if _, err := outbox.Inbox(ctx, "billing", id+1); err != nil {
				return err
			}
		}
		return nil
	}))
	_, err = pool.Exec(ctx, "UPDATE outbox_inbox SET processed_at = now() - interval '40 days' WHERE event_id < 3")
	require.NoError(t, err)
	code, out, _ = outboxCmd(t, url, "purge-inbox", "-older-than", "720h", "-batch", "1")
	require.Equal(t, exitOK, code)
	require.Equal(t, "deleted 2 inbox records processed more than 720h0m0s ago\n", out)
	rows, err := pool.Query(ctx, "SELECT event_id FROM outbox_inbox ORDER BY event_id")
	require.NoError(t, err)
	left, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Equal(t, []int64{3}, left, "the recent record stays")
}

// count is the number of rows in table.
func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestUsageErrorsExitTwoNamingTheMistake(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"replay"}, "replay: missing event ids (or -all)"},
		{[]string{"replay", "x"}, `replay: event id "x" must be a whole number ≥ 1`},
		{[]string{"replay", "-all", "3"}, "replay: give event ids or -all, not both"},
		{[]string{"dead", "-limit", "0"}, "-limit 0 must be at least 1"},
		{[]string{"status", "extra"}, `status: unexpected argument "extra"`},
		{[]string{"purge-inbox", "-older-than", "-1h"}, "-older-than -1h0m0s must not be negative"},
		{[]string{"purge-inbox", "-batch", "0"}, "-batch 0 must be at least 1"},
	} {
		code, _, errOut := outboxCmd(t, "postgres://nowhere", tc.args...)
		require.Equal(t, exitUsage, code, tc.args)
		require.Equal(t, "outbox: "+tc.want+"\nRun 'outbox -h' for usage.\n", errOut)
	}
	code, _, errOut := outboxCmd(t, "", "status")
	require.Equal(t, exitFail, code)
	require.Equal(t, "outbox: no database for -db main: set DB_MAIN_URL, DATABASE_URL or DB_MAIN_HOST (with PORT, USER, PASSWORD…)\n", errOut)
	// The schema owner's URL alone is for migrate, not for the other commands.
	var errBuf bytes.Buffer
	code = run(t.Context(), []string{"status"}, func(k string) string {
		if k == "DB_MAIN_MIGRATE_URL" {
			return "postgres://owner@nowhere/app"
		}
		return ""
	}, io.Discard, &errBuf)
	require.Equal(t, exitFail, code)
	require.Equal(t, "outbox: no database for -db main: set DB_MAIN_URL, DATABASE_URL or DB_MAIN_HOST (with PORT, USER, PASSWORD…)\n", errBuf.String())
	code, out, _ := outboxCmd(t, "", "-h")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "replay ID...")
	require.Contains(t, out, "purge-inbox")
}
