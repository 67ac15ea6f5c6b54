package integration

// Fault tests of cmd/migrate (reliability item 8): several processes racing
// on one empty database, the lock holder killed mid-migration, a migration
// that fails. Each test runs the real binary (migrateBinary, built once per
// test binary) against a database of its own, stops a migration at a known
// statement with an advisory lock the test holds (the gate), learns from the
// server that the migration waits there, and checks the database afterwards.

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3/lock"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
)

// mfGateKey is the advisory lock a gated migration waits for while the test
// holds it. Advisory locks belong to one database: parallel tests, each on a
// database of its own, do not share it.
const mfGateKey = 80080001

// mfTimeout bounds each test.
const mfTimeout = 2 * time.Minute

// mfGated is a migration statement that waits until the test opens the gate.
var mfGated = fmt.Sprintf("SELECT pg_advisory_xact_lock(%d);", mfGateKey)

// mfProc is a cmd/migrate process.
type mfProc struct {
	app            string // its application_name, to find its sessions
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{} // closed when it has exited and its output is complete
}

// mfResult is how an mfProc ended.
type mfResult struct {
	code           int            // exit status; -1 when a signal ended it
	signal         syscall.Signal // the signal that ended it, or 0
	stdout, stderr string
}

// mfStart starts cmd/migrate args against the database at dbURL, with
// application_name app on its sessions. The process is killed when ctx ends
// and, at the latest, when the test ends.
func mfStart(t *testing.T, ctx context.Context, dbURL, app string, args ...string) *mfProc {
	t.Helper()
	bin, err := migrateBinary()
	require.NoError(t, err)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()

	p := &mfProc{app: app, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + u.String()}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait() // the exit status is read from ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill() // an error only says it has exited already
		<-p.done
	})
	return p
}

// exited reports whether the process has ended.
func (p *mfProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to end (ctx's deadline kills it) and returns how.
func (p *mfProc) wait() mfResult {
	<-p.done
	r := mfResult{code: p.cmd.ProcessState.ExitCode(), stdout: p.stdout.String(), stderr: p.stderr.String()}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.signal = ws.Signal()
	}
	return r
}

func (r mfResult) String() string {
	return fmt.Sprintf("exit %d (signal %v)\nstdout:\n%s\nstderr:\n%s", r.code, r.signal, r.stdout, r.stderr)
}

// mfRun runs cmd/migrate to its end.
func mfRun(t *testing.T, ctx context.Context, dbURL, app string, args ...string) mfResult {
	t.Helper()
	return mfStart(t, ctx, dbURL, app, args...).wait()
}

// mfMigrations writes name, content pairs into a new directory.
func mfMigrations(t *testing.T, kv ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(kv); i += 2 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, kv[i]), []byte(kv[i+1]), 0o644))
	}
	return dir
}

// mfMigration is a goose SQL file.
func mfMigration(up, down string) string {
	return "-- +goose Up\n" + up + "\n-- +goose Down\n" + down + "\n"
}

// mfDB opens a pool on the test database for the checks; closed before the
// database is dropped.
func mfDB(t *testing.T, ctx context.Context, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// mfGate holds the gate on a session of its own until open is called.
type mfGate struct {
	conn *pgx.Conn
	pid  uint32
}

func mfCloseGate(t *testing.T, ctx context.Context, dbURL string) *mfGate {
	t.Helper()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	_, err = conn.Exec(ctx, "SELECT pg_advisory_lock($1)", mfGateKey)
	require.NoError(t, err)
	return &mfGate{conn: conn, pid: conn.PgConn().PID()}
}

func (g *mfGate) open(t *testing.T, ctx context.Context) {
	t.Helper()
	var released bool
	require.NoError(t, g.conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", mfGateKey).Scan(&released))
	require.True(t, released, "the gate was held")
}

// mfAwaitBlocked waits until the server reports a session of p waiting for
// the gate, and returns that session's backend pid.
func mfAwaitBlocked(t *testing.T, ctx context.Context, pool *pgxpool.Pool, g *mfGate, p *mfProc) int32 {
	t.Helper()
	var pid int32
	require.Eventually(t, func() bool {
		if p.exited() {
			return true
		}
		err := pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND $2 = ANY (pg_blocking_pids(pid))`, p.app, int32(g.pid)).Scan(&pid)
		return err == nil
	}, mfTimeout/2, 10*time.Millisecond, "%s never waited for the gate", p.app)
	if p.exited() {
		require.FailNow(t, p.app+" ended before it reached the gate", p.wait().String())
	}
	return pid
}

// mfAwaitGone waits until the server has ended the backend pid.
func mfAwaitGone(t *testing.T, ctx context.Context, pool *pgxpool.Pool, pid int32) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n)
		return err == nil && n == 0
	}, mfTimeout/2, 10*time.Millisecond, "backend %d is still there", pid)
}

// mfGooseLockHolders returns the backends holding goose's advisory lock in
// the test database.
func mfGooseLockHolders(t *testing.T, ctx context.Context, pool *pgxpool.Pool) []int32 {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND ((classid::bigint << 32) | objid::bigint) = $1
		ORDER BY pid`, lock.DefaultLockID)
	require.NoError(t, err)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	return pids
}

// mfVersion is a row of goose's version table.
type mfVersion struct {
	Version int64
	Applied bool
}

// mfVersions returns goose_db_version's rows after the zero row, in the order
// they were written.
func mfVersions(t *testing.T, ctx context.Context, pool *pgxpool.Pool) []mfVersion {
	t.Helper()
	rows, err := pool.Query(ctx, "SELECT version_id, is_applied FROM goose_db_version WHERE version_id > 0 ORDER BY id")
	require.NoError(t, err)
	vs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[mfVersion])
	require.NoError(t, err)
	return vs
}

// mfApplied is what the version table holds after versions 1..n applied once each.
func mfApplied(n int64) []mfVersion {
	vs := []mfVersion{}
	for v := int64(1); v <= n; v++ {
		vs = append(vs, mfVersion{v, true})
	}
	return vs
}

// mfExists reports which of the named relations (tables, indexes) and types exist.
func mfExists(t *testing.T, ctx context.Context, pool *pgxpool.Pool, names ...string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for _, n := range names {
		var ok bool
		require.NoError(t, pool.QueryRow(ctx,
			"SELECT to_regclass($1) IS NOT NULL OR to_regtype($1) IS NOT NULL", n).Scan(&ok))
		got[n] = ok
	}
	return got
}

// mfUpLines returns the files an up run reports applied, in order.
func mfUpLines(stdout string) []string {
	var files []string
	for _, m := range regexp.MustCompile(`(?m)^up   (\S+\.sql) \(.+\)$`).FindAllStringSubmatch(stdout, -1) {
		files = append(files, m[1])
	}
	return files
}

// mfRacingMigrations are four versions whose every run leaves a row in runs
// (version, backend): a migration applied twice shows up there even where its
// DDL alone would not. Version 2 waits at the gate inside its transaction.
func mfRacingMigrations(t *testing.T) string {
	t.Helper()
	return mfMigrations(t,
		"00001_runs.sql", mfMigration(
			"CREATE TABLE runs (version int NOT NULL, pid int NOT NULL DEFAULT pg_backend_pid());\n"+
				"INSERT INTO runs (version) VALUES (1);",
			"DROP TABLE runs;"),
		"00002_accounts.sql", mfMigration(
			"CREATE TABLE accounts (id bigint PRIMARY KEY);\n"+mfGated+"\n"+
				"INSERT INTO runs (version) VALUES (2);",
			"DROP TABLE accounts;"),
		"00003_accounts_name.sql", mfMigration(
			"ALTER TABLE accounts ADD COLUMN name text NOT NULL DEFAULT '';\n"+
				"CREATE INDEX accounts_name ON accounts (name);\n"+
				"INSERT INTO runs (version) VALUES (3);",
			"DROP INDEX accounts_name;\nALTER TABLE accounts DROP COLUMN name;"),
		"00004_mood.sql", mfMigration(
			"CREATE TYPE mood AS ENUM ('calm', 'busy');\n"+
				"INSERT INTO runs (version) VALUES (4);",
			"DROP TYPE mood;"),
	)
}

// TestMigrateFaultsFiveProcessesRace starts five `up` processes at once on
// one empty database, holds the first one that gets the migration lock at
// version 2 until the server shows the four others polling for that lock,
// then lets them all finish: every process exits 0, one of them applied
// every version, the others found nothing to do, and each version ran
// exactly once. With -pgbouncer the same holds for goose's table lock.
func TestMigrateFaultsFiveProcessesRace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		flags []string
		// polling matches pg_stat_activity.query of a session that tried
		// the migration lock and found it taken.
		polling string
	}{
		{"advisory lock", nil, `query = 'SELECT pg_try_advisory_lock($1)'`},
		// goose's table locker cleans up stale locks after each failed try.
		{"table lock (-pgbouncer)", []string{"-pgbouncer"}, `query LIKE 'UPDATE goose_lock SET%WHERE locked = true AND lease_expires_at < now()%'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), mfTimeout)
			defer cancel()
			dbURL := dbtest.NewURL(t, dbtest.WithoutMigrations())
			pool := mfDB(t, ctx, dbURL)
			dir := mfRacingMigrations(t)
			gate := mfCloseGate(t, ctx, dbURL)

			// -lock-timeout 0: the gated statement waits as long as the
			// test needs. -lock-wait bounds the losers' wait.
			args := append(append([]string{}, tc.flags...), "-lock-timeout", "0", "-lock-wait", "1m", "-dir", dir, "up")
			procs := make([]*mfProc, 5)
			for i := range procs {
				procs[i] = mfStart(t, ctx, dbURL, fmt.Sprintf("mf-race-%d", i+1), args...)
			}

			var winner string
			require.Eventually(t, func() bool {
				err := pool.QueryRow(ctx, `SELECT application_name FROM pg_stat_activity
					WHERE application_name LIKE 'mf-race-%' AND $1 = ANY (pg_blocking_pids(pid))`,
					int32(gate.pid)).Scan(&winner)
				return err == nil
			}, mfTimeout/2, 10*time.Millisecond, "no process reached the gate")
			require.Eventually(t, func() bool {
				var n int
				err := pool.QueryRow(ctx, `SELECT count(DISTINCT application_name) FROM pg_stat_activity
					WHERE application_name LIKE 'mf-race-%' AND application_name <> $1 AND `+tc.polling, winner).Scan(&n)
				return err == nil && n == len(procs)-1
			}, mfTimeout/2, 10*time.Millisecond, "the four others never polled for the migration lock")
			require.Equal(t, mfApplied(1), mfVersions(t, ctx, pool), "the winner waits in version 2, version 1 is committed")

			gate.open(t, ctx)
			files := []string{"00001_runs.sql", "00002_accounts.sql", "00003_accounts_name.sql", "00004_mood.sql"}
			for _, p := range procs {
				r := p.wait()
				require.Equal(t, 0, r.code, "%s: %s", p.app, r)
				require.Empty(t, r.stderr, p.app)
				if p.app == winner {
					require.Equal(t, files, mfUpLines(r.stdout), "%s applied every version", p.app)
					require.True(t, strings.HasSuffix(r.stdout, "\ndatabase at version 4\n"), "%s: %s", p.app, r)
				} else {
					require.Equal(t, "nothing to do; database at version 4\n", r.stdout, p.app)
				}
			}

			require.Equal(t, mfApplied(4), mfVersions(t, ctx, pool))
			rows, err := pool.Query(ctx, "SELECT version, count(*), count(DISTINCT pid) FROM runs GROUP BY version ORDER BY version")
			require.NoError(t, err)
			runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]int64, error) {
				var v [3]int64
				err := r.Scan(&v[0], &v[1], &v[2])
				return v, err
			})
			require.NoError(t, err)
			require.Equal(t, [][3]int64{{1, 1, 1}, {2, 1, 1}, {3, 1, 1}, {4, 1, 1}}, runs, "version, runs, backends")
			var backends int
			require.NoError(t, pool.QueryRow(ctx, "SELECT count(DISTINCT pid) FROM runs").Scan(&backends))
			require.Equal(t, 1, backends, "one session applied every version")
			require.Equal(t, map[string]bool{"runs": true, "accounts": true, "accounts_name": true, "mood": true},
				mfExists(t, ctx, pool, "runs", "accounts", "accounts_name", "mood"))

			require.Empty(t, mfGooseLockHolders(t, ctx, pool), "the advisory lock is free")
			if tc.flags != nil {
				var locked bool
				require.NoError(t, pool.QueryRow(ctx, "SELECT bool_or(locked) FROM goose_lock").Scan(&locked))
				require.False(t, locked, "the table lock is free")
			}
		})
	}
}
