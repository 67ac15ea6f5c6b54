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
	p := &mfProc{app: app, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + mfURLWith(t, dbURL, "application_name", app)}
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

// mfURLWith returns the postgres:// URL raw with parameter key set to value
// (pgx sends parameters it does not know to the server as settings).
func mfURLWith(t *testing.T, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
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
			rows, err := pool.Query(ctx, "SELECT version, count(*) FROM runs GROUP BY version ORDER BY version")
			require.NoError(t, err)
			runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
				var v [2]int64
				err := r.Scan(&v[0], &v[1])
				return v, err
			})
			require.NoError(t, err)
			require.Equal(t, [][2]int64{{1, 1}, {2, 1}, {3, 1}, {4, 1}}, runs, "each version ran once (version, runs)")
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

// mfKillMigrations are four versions; version 3 creates a table, then waits
// at the gate inside its transaction before it creates an index.
func mfKillMigrations(t *testing.T) string {
	t.Helper()
	return mfMigrations(t,
		"00001_a.sql", mfMigration("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_b.sql", mfMigration("CREATE TABLE b (id int);", "DROP TABLE b;"),
		"00003_c.sql", mfMigration("CREATE TABLE c (id int);\n"+mfGated+"\nCREATE INDEX c_id ON c (id);", "DROP TABLE c;"),
		"00004_d.sql", mfMigration("CREATE TABLE d (id int);", "DROP TABLE d;"),
	)
}

// mfLockedMessage is cmd/migrate's report of a migration lock it could not get.
func mfLockedMessage(kind string) string {
	return "migrate: migrate up: another migration holds the migration lock (" + kind +
		"; waited 1s): let it finish or raise the lock wait (WithLockWait, -lock-wait)\n"
}

// TestMigrateFaultsHolderKilledMidMigration stops an `up` in version 3, in its
// transaction after its first DDL statement, and ends the process: version 3
// is rolled back and not recorded, versions 1 and 2 stay, the migration lock
// is released and the next `up` applies 3 and 4.
//
// What PostgreSQL does in between is documented here rather than hidden: the
// server notices that a client has gone only when it next reads from or
// writes to it, so a SIGKILLed process's session lives on as long as its
// statement runs (here: until the test opens the gate; in production: until a
// long CREATE INDEX or table rewrite finishes, or lock_timeout ends a lock
// wait). Until then it keeps the migration lock, and a new `up` fails cleanly
// after -lock-wait instead of hanging. A client_connection_check_interval on
// the migration sessions (PostgreSQL 14+; here a URL parameter, or ALTER ROLE
// … SET) makes the server end such an orphan at once. SIGTERM is the clean
// way: cmd/migrate exits 1 only once the server has ended the session (pgx
// sends it a cancel request; the advisory locker waits for that). With the
// table lock (-pgbouncer) the lock is a row with a 30s lease: the next `up`
// gets it once the killed holder's lease has run out.
func TestMigrateFaultsHolderKilledMidMigration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		signal syscall.Signal
		flags  []string
		// checkClient sets client_connection_check_interval on the
		// migration sessions.
		checkClient bool
	}{
		{name: "SIGKILL, advisory lock", signal: syscall.SIGKILL},
		{name: "SIGTERM, advisory lock", signal: syscall.SIGTERM},
		{name: "SIGKILL, advisory lock, server checks the client", signal: syscall.SIGKILL, checkClient: true},
		{name: "SIGKILL, table lock (-pgbouncer)", signal: syscall.SIGKILL, flags: []string{"-pgbouncer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), mfTimeout)
			defer cancel()
			dbURL := dbtest.NewURL(t, dbtest.WithoutMigrations())
			pool := mfDB(t, ctx, dbURL)
			dir := mfKillMigrations(t)
			tableLock := tc.flags != nil
			migrateURL := dbURL
			if tc.checkClient {
				migrateURL = mfURLWith(t, dbURL, "client_connection_check_interval", "100ms")
			}
			flags := func(extra ...string) []string {
				return append(append(append([]string{}, tc.flags...), extra...), "-dir", dir, "up")
			}

			gate := mfCloseGate(t, ctx, dbURL)
			// -lock-timeout 0: the gated statement stands for one that
			// lock_timeout does not bound (an index build, a rewrite).
			p := mfStart(t, ctx, migrateURL, "mf-killed", flags("-lock-timeout", "0")...)
			orphan := mfAwaitBlocked(t, ctx, pool, gate, p)
			var inTx bool
			require.NoError(t, pool.QueryRow(ctx, "SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = $1", orphan).Scan(&inTx))
			require.True(t, inTx, "version 3 waits inside its transaction, its CREATE TABLE done")
			require.Equal(t, mfApplied(2), mfVersions(t, ctx, pool))
			lockKind := "advisory lock"
			if tableLock {
				lockKind = "table lock"
				var lockedBy string
				require.NoError(t, pool.QueryRow(ctx, "SELECT locked_by FROM goose_lock WHERE locked").Scan(&lockedBy))
				require.Contains(t, lockedBy, fmt.Sprintf("-%d-", p.cmd.Process.Pid), "the process holds the table lock")
			} else {
				require.Equal(t, []int32{orphan}, mfGooseLockHolders(t, ctx, pool), "its session holds the advisory lock")
			}

			require.NoError(t, p.cmd.Process.Signal(tc.signal))
			r := p.wait()
			if tc.signal == syscall.SIGKILL {
				require.Equal(t, syscall.SIGKILL, r.signal, r.String())
			} else {
				require.Equal(t, 1, r.code, r.String())
				require.Equal(t, []string{"00001_a.sql", "00002_b.sql"}, mfUpLines(r.stdout))
				require.True(t, strings.HasPrefix(r.stderr, "migrate: migrate up: 00003_c.sql: context canceled"), r.String())
			}

			switch {
			case tc.signal == syscall.SIGTERM:
				// cmd/migrate returns only once the server has ended the
				// session (pgx sends a cancel request): nothing to wait for.
				var alive int
				require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", orphan).Scan(&alive))
				require.Zero(t, alive, "the session ended before the process exited")
				require.Empty(t, mfGooseLockHolders(t, ctx, pool))
			case tc.checkClient:
				// The server polls the socket while the statement waits and
				// ends the session: no orphan, though the gate is still shut.
				mfAwaitGone(t, ctx, pool, orphan)
				require.Empty(t, mfGooseLockHolders(t, ctx, pool))
			default:
				// The orphan still waits at the gate, holding the lock.
				var alive int
				require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", orphan).Scan(&alive))
				require.Equal(t, 1, alive, "the killed process's session outlives it while its statement runs")
				if !tableLock {
					require.Equal(t, []int32{orphan}, mfGooseLockHolders(t, ctx, pool))
				}
				r := mfRun(t, ctx, dbURL, "mf-meanwhile", flags("-lock-wait", "1s")...)
				require.Equal(t, 1, r.code, r.String())
				require.Empty(t, r.stdout)
				require.Equal(t, mfLockedMessage(lockKind), r.stderr)
				require.Equal(t, mfApplied(2), mfVersions(t, ctx, pool))
			}

			gate.open(t, ctx)
			mfAwaitGone(t, ctx, pool, orphan)
			require.Empty(t, mfGooseLockHolders(t, ctx, pool), "the advisory lock went with the session")
			require.Equal(t, mfApplied(2), mfVersions(t, ctx, pool), "version 3 is not recorded")
			require.Equal(t, map[string]bool{"a": true, "b": true, "c": false, "c_id": false, "d": false},
				mfExists(t, ctx, pool, "a", "b", "c", "c_id", "d"), "version 3's CREATE TABLE was rolled back")

			// The next run does not hang: it gets the lock within
			// -lock-wait (the table lock: once the lease has run out).
			wait := "5s"
			if tableLock {
				wait = "1m"
			}
			r = mfRun(t, ctx, dbURL, "mf-next", flags("-lock-wait", wait)...)
			require.Equal(t, 0, r.code, r.String())
			require.Empty(t, r.stderr)
			require.Equal(t, []string{"00003_c.sql", "00004_d.sql"}, mfUpLines(r.stdout))
			require.True(t, strings.HasSuffix(r.stdout, "\ndatabase at version 4\n"), r.String())
			require.Equal(t, mfApplied(4), mfVersions(t, ctx, pool))
			require.Equal(t, map[string]bool{"c": true, "c_id": true, "d": true}, mfExists(t, ctx, pool, "c", "c_id", "d"))
			require.Empty(t, mfGooseLockHolders(t, ctx, pool))
			if tableLock {
				var locked bool
				require.NoError(t, pool.QueryRow(ctx, "SELECT bool_or(locked) FROM goose_lock").Scan(&locked))
				require.False(t, locked, "the table lock is free")
			}
		})
	}
}

// TestMigrateFaultsKilledInNoTransactionMigrationLeavesItsFirstStatements
// kills an `up` inside a -- +goose NO TRANSACTION migration, between its
// statements. There is no transaction to roll back: the statement before the
// kill stays, the rest never runs and the version is not recorded. goose
// runs the whole file again next time, so a migration that is not
// idempotent then fails on what the killed run left (the file and line
// named, exit 1, the version unchanged); written idempotently, as the house
// style asks of such migrations, it completes.
func TestMigrateFaultsKilledInNoTransactionMigrationLeavesItsFirstStatements(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), mfTimeout)
	defer cancel()
	dbURL := dbtest.NewURL(t, dbtest.WithoutMigrations())
	pool := mfDB(t, ctx, dbURL)
	noTx := func(create string) string {
		return "-- +goose NO TRANSACTION\n" + mfMigration(
			create+" nt_before (id int);\n"+mfGated+"\nCREATE TABLE nt_after (id int);",
			"DROP TABLE nt_after;\nDROP TABLE nt_before;")
	}
	dir := mfMigrations(t,
		"00001_a.sql", mfMigration("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_b.sql", mfMigration("CREATE TABLE b (id int);", "DROP TABLE b;"),
		"00003_notx.sql", noTx("CREATE TABLE"),
		"00004_d.sql", mfMigration("CREATE TABLE d (id int);", "DROP TABLE d;"),
	)

	gate := mfCloseGate(t, ctx, dbURL)
	p := mfStart(t, ctx, dbURL, "mf-notx", "-lock-timeout", "0", "-dir", dir, "up")
	orphan := mfAwaitBlocked(t, ctx, pool, gate, p)
	require.Equal(t, map[string]bool{"nt_before": true, "nt_after": false}, mfExists(t, ctx, pool, "nt_before", "nt_after"),
		"outside a transaction, the first statement is committed before the gate")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	r := p.wait()
	require.Equal(t, syscall.SIGKILL, r.signal, r.String())
	gate.open(t, ctx)
	mfAwaitGone(t, ctx, pool, orphan)

	require.Empty(t, mfGooseLockHolders(t, ctx, pool))
	require.Equal(t, mfApplied(2), mfVersions(t, ctx, pool), "version 3 is not recorded")
	require.Equal(t, map[string]bool{"nt_before": true, "nt_after": false, "d": false},
		mfExists(t, ctx, pool, "nt_before", "nt_after", "d"), "the partial DDL of version 3 stays")

	r = mfRun(t, ctx, dbURL, "mf-notx-again", "-lock-wait", "5s", "-dir", dir, "up")
	require.Equal(t, 1, r.code, r.String())
	// The killed run never reached the point where it records checksums:
	// this one records those of versions 1 and 2, and says so.
	require.Equal(t, "recorded checksum of 00001_a.sql (applied before checksums were kept)\n"+
		"recorded checksum of 00002_b.sql (applied before checksums were kept)\n", r.stdout)
	require.Equal(t, "migrate: migrate up: 00003_notx.sql:3: ERROR: relation \"nt_before\" already exists (SQLSTATE 42P07); NO TRANSACTION: statement 1 of 3 failed, none ran before it: fix it and run again\n", r.stderr)
	require.Equal(t, mfApplied(2), mfVersions(t, ctx, pool))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "00003_notx.sql"), []byte(noTx("CREATE TABLE IF NOT EXISTS")), 0o644))
	r = mfRun(t, ctx, dbURL, "mf-notx-fixed", "-lock-wait", "5s", "-dir", dir, "up")
	require.Equal(t, 0, r.code, r.String())
	require.Equal(t, []string{"00003_notx.sql", "00004_d.sql"}, mfUpLines(r.stdout))
	require.Equal(t, mfApplied(4), mfVersions(t, ctx, pool))
	require.Equal(t, map[string]bool{"nt_before": true, "nt_after": true, "d": true},
		mfExists(t, ctx, pool, "nt_before", "nt_after", "d"))
}

// TestMigrateFaultsFailingMigrationLeavesTheLastGoodVersion runs an `up`
// whose version 3 fails after several statements that each left something
// (a table, an index, a type, a row, a column): exit 1, the error names the
// file and the line, versions 1 and 2 stay recorded, nothing of version 3
// remains and version 4 never ran. A second run fails the same way (the
// lock was released; nothing half-applied trips it), and once the file is
// fixed the next run applies 3 and 4.
func TestMigrateFaultsFailingMigrationLeavesTheLastGoodVersion(t *testing.T) {
	t.Parallel()
	// The statements before the failing one, lines 2 to 6 of the file.
	const before = "CREATE TABLE orders (id int PRIMARY KEY);\n" +
		"CREATE INDEX orders_id_desc ON orders (id DESC);\n" +
		"CREATE TYPE order_state AS ENUM ('new', 'paid');\n" +
		"INSERT INTO items (id, name) VALUES (2, 'second');\n" +
		"ALTER TABLE items ADD COLUMN price numeric;\n"
	for _, tc := range []struct {
		name    string
		failing string   // from line 7 on
		flags   []string // beyond -dir
		// holdLedger has the test hold a lock on ledger that version 3's
		// ALTER TABLE waits for.
		holdLedger bool
		stderr     string
	}{
		{
			name:    "a syntax error names its own line inside a statement",
			failing: "ALTER TABLE items\n    ADD COLUMN qty int,\n    ADD COLUMN note text NOT NUL;\n",
			stderr:  `migrate: migrate up: 00003_bad.sql:9: ERROR: syntax error at or near "NUL" (SQLSTATE 42601)` + "\n",
		},
		{
			name:    "a constraint violation names the line its statement starts on",
			failing: "INSERT INTO items (id, name)\nVALUES (3, 'third'),\n       (1, 'again');\n",
			stderr: `migrate: migrate up: 00003_bad.sql:7: ERROR: duplicate key value violates unique constraint "items_pkey" (SQLSTATE 23505); ` +
				"detail: Key (id)=(1) already exists.\n",
		},
		{
			name:       "lock_timeout ends DDL queued behind a transaction",
			failing:    "ALTER TABLE ledger ADD COLUMN qty int;\n",
			flags:      []string{"-lock-timeout", "300ms"},
			holdLedger: true,
			stderr: `migrate: migrate up: 00003_bad.sql:7: ERROR: canceling statement due to lock timeout (SQLSTATE 55P03); ` +
				"lock_timeout (300ms) expired waiting for a lock other sessions hold: retry when the table is less busy, " +
				"or raise the timeout (WithLockTimeout, -lock-timeout)\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), mfTimeout)
			defer cancel()
			dbURL := dbtest.NewURL(t, dbtest.WithoutMigrations())
			pool := mfDB(t, ctx, dbURL)
			dir := mfMigrations(t,
				"00001_items.sql", mfMigration("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\nCREATE TABLE ledger (id int);",
					"DROP TABLE ledger;\nDROP TABLE items;"),
				"00002_seed.sql", mfMigration("INSERT INTO items (id, name) VALUES (1, 'first');", "DELETE FROM items;"),
				"00003_bad.sql", "-- +goose Up\n"+before+tc.failing+"CREATE TABLE never (id int);\n-- +goose Down\nSELECT 1;\n",
				"00004_after.sql", mfMigration("CREATE TABLE after_bad (id int);", "DROP TABLE after_bad;"),
			)
			args := append(append([]string{}, tc.flags...), "-lock-wait", "5s", "-dir", dir, "up")
			var reader pgx.Tx
			if tc.holdLedger {
				// Versions 1 and 2 first, then a reader that keeps ledger
				// locked in share mode until the file is fixed.
				r := mfRun(t, ctx, dbURL, "mf-upto", "-dir", dir, "up-to", "2")
				require.Equal(t, 0, r.code, r.String())
				var err error
				reader, err = pool.Begin(ctx)
				require.NoError(t, err)
				t.Cleanup(func() { _ = reader.Rollback(context.WithoutCancel(ctx)) })
				_, err = reader.Exec(ctx, "LOCK TABLE ledger IN ACCESS SHARE MODE")
				require.NoError(t, err)
			}

			for run := 1; run <= 2; run++ {
				r := mfRun(t, ctx, dbURL, "mf-bad", args...)
				require.Equal(t, 1, r.code, "run %d: %s", run, r)
				require.Equal(t, tc.stderr, r.stderr, "run %d", run)
				if tc.holdLedger || run == 2 {
					require.Empty(t, r.stdout, "run %d", run)
				} else {
					require.Equal(t, []string{"00001_items.sql", "00002_seed.sql"}, mfUpLines(r.stdout))
					require.NotContains(t, r.stdout, "database at version")
				}
				require.Equal(t, mfApplied(2), mfVersions(t, ctx, pool), "run %d", run)
				require.Equal(t, map[string]bool{"items": true, "orders": false, "orders_id_desc": false, "order_state": false, "never": false, "after_bad": false},
					mfExists(t, ctx, pool, "items", "orders", "orders_id_desc", "order_state", "never", "after_bad"), "run %d", run)
				var ids []int32
				rows, err := pool.Query(ctx, "SELECT id FROM items ORDER BY id")
				require.NoError(t, err)
				ids, err = pgx.CollectRows(rows, pgx.RowTo[int32])
				require.NoError(t, err)
				require.Equal(t, []int32{1}, ids, "run %d: version 3's row was rolled back", run)
				var price bool
				require.NoError(t, pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM information_schema.columns
					WHERE table_name = 'items' AND column_name = 'price')`).Scan(&price))
				require.False(t, price, "run %d: version 3's column was rolled back", run)
				require.Empty(t, mfGooseLockHolders(t, ctx, pool), "run %d", run)
			}

			// Fixed (and the reader gone), the next run applies 3 and 4.
			require.NoError(t, os.WriteFile(filepath.Join(dir, "00003_bad.sql"),
				[]byte(mfMigration(before, "ALTER TABLE items DROP COLUMN price;\nDELETE FROM items WHERE id = 2;\nDROP TYPE order_state;\nDROP TABLE orders;")), 0o644))
			if reader != nil {
				require.NoError(t, reader.Rollback(ctx))
			}
			r := mfRun(t, ctx, dbURL, "mf-fixed", args...)
			require.Equal(t, 0, r.code, r.String())
			require.Equal(t, []string{"00003_bad.sql", "00004_after.sql"}, mfUpLines(r.stdout))
			require.Equal(t, mfApplied(4), mfVersions(t, ctx, pool))
			require.Equal(t, map[string]bool{"orders": true, "orders_id_desc": true, "order_state": true, "after_bad": true},
				mfExists(t, ctx, pool, "orders", "orders_id_desc", "order_state", "after_bad"))
		})
	}
}
