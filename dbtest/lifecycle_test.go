package dbtest_test

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
)

// owner returns the owner part of a dbtest database name: dbtest_<owner>_.
func owner(db string) string { return db[:strings.LastIndexByte(db, '_')+1] }

// databasesOf lists the databases on the shared server whose name starts
// with prefix.
func databasesOf(t *testing.T, prefix string) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbtest.Server(t).URL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1", prefix)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

// heldChild is a child in mode "hold": its test runs until stdin closes.
type heldChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	db    string
	done  chan struct{} // closed when the child exited, err then set
	err   error
}

func startHeld(t *testing.T) *heldChild {
	t.Helper()
	cmd := childCmd(t, "hold")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &heldChild{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := databaseLine.FindStringSubmatch(sc.Text()); m != nil {
				lines <- m[1]
			}
		}
		close(lines)
		c.err = cmd.Wait()
		close(c.done)
	}()
	select {
	case db, ok := <-lines:
		require.True(t, ok, "the child ended before it printed its database")
		c.db = db
	case <-time.After(2 * time.Minute):
		t.Fatal("the child printed no database within 2 minutes")
	}
	go func() {
		for range lines { //nolint:revive // drain the rest
		}
	}()
	return c
}

// wait waits for the child to exit and returns its error.
func (c *heldChild) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(time.Minute):
		t.Fatal("the child did not exit within a minute")
		return nil
	}
}

// ownerLockHeld reports whether the advisory lock of the owner of database
// db is held on the shared server.
func ownerLockHeld(t *testing.T, db string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbtest.Server(t).URL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	hex := strings.TrimSuffix(strings.TrimPrefix(owner(db), "dbtest_"), "_")
	var held bool
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_locks
		WHERE locktype = 'advisory' AND classid = x'64627431'::bigint::oid AND objid = ('x' || $1)::bit(32)::bigint::oid)`, hex).Scan(&held))
	return held
}

// ownerSessions counts the sessions of the owner of database db (its
// application_name).
func ownerSessions(t *testing.T, db string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbtest.Server(t).URL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
		strings.TrimSuffix(owner(db), "_")).Scan(&n))
	return n
}

func TestKilledRunsAreSweptRunningAndKeptOnesSpared(t *testing.T) {
	t.Parallel()
	running := startHeld(t)
	killed := startHeld(t)
	require.True(t, ownerLockHeld(t, killed.db))
	require.NoError(t, killed.cmd.Process.Kill())
	_ = killed.wait(t) // killed: an error by design
	deadline := time.Now().Add(time.Minute)
	for ownerLockHeld(t, killed.db) || ownerSessions(t, killed.db) > 0 { // the server ends the killed process's sessions
		require.False(t, time.Now().After(deadline), "the killed process's sessions outlived it by a minute")
		time.Sleep(10 * time.Millisecond) // polling the server for sessions that end, bounded by deadline
	}
	require.NotEmpty(t, databasesOf(t, owner(killed.db)))

	out, err := runChild(t, "fail", "")
	require.Error(t, err, out)
	kept := databaseLine.FindStringSubmatch(out)[1]
	t.Cleanup(func() { dropDatabase(t, kept) })

	out, err = runChild(t, "pass", "") // sweeps when it starts, and waits for its sweep to end
	require.NoError(t, err, out)

	require.Empty(t, databasesOf(t, owner(killed.db)), "a killed run's databases are swept")
	require.Equal(t, []string{kept}, databasesOf(t, owner(kept)), "a failed test's database is kept")
	require.Contains(t, databasesOf(t, owner(running.db)), running.db, "a running test's database is spared")

	require.NoError(t, running.stdin.Close())
	require.NoError(t, running.wait(t))
	require.Empty(t, databasesOf(t, owner(running.db)))
}

func TestDatabaseURLIsNeverUsed(t *testing.T) {
	t.Parallel()
	url := dbtest.Server(t).URL()
	out, err := runChild(t, "where", "", "DATABASE_URL="+url, "TEST_DATABASE_URL="+url, dbtest.DatabaseURLEnv+"=")
	require.NoError(t, err, out)
	require.NotContains(t, out, "SOURCE env", "the child started a server of its own")
	db := databaseLine.FindStringSubmatch(out)[1]
	require.Empty(t, databasesOf(t, owner(db)), "nothing was created on the server of DATABASE_URL")
}

func TestNewURLFailsATestThatLeavesAConnectionOpen(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "leak", "")
	require.Error(t, err, out)
	db := databaseLine.FindStringSubmatch(out)[1]
	t.Cleanup(func() { dropDatabase(t, db) })
	require.Contains(t, out, "dbtest: 1 connections to database "+db+" are still open after the test: "+
		"close every pool and connection opened on the URL of dbtest.NewURL")
	require.Contains(t, out, "dbtest: kept database "+db+" for inspection")
}

func TestTxRefusesWithMaxConns(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "txmaxconns", "")
	require.Error(t, err)
	require.Contains(t, out, "dbtest: WithMaxConns applies to New, not Tx (its pool is shared)")
}

func TestPoolSizeZeroClonesOnDemand(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "pass", "", dbtest.PoolSizeEnv+"=0")
	require.NoError(t, err, out)
	db := databaseLine.FindStringSubmatch(out)[1]
	require.True(t, strings.HasSuffix(db, "_1"), "the test's database is the first and only clone: %s", db)
	require.Empty(t, databasesOf(t, owner(db)))
}

func TestBadPoolSizeNamesTheVariable(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "pass", "", dbtest.PoolSizeEnv+"=many")
	require.Error(t, err)
	require.Contains(t, out, `dbtest: DBTEST_POOL_SIZE="many": want a number of databases from 0 to 64`)
}

func TestUnreachableOptInNamesTheVariable(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "pass", "", dbtest.DatabaseURLEnv+"=postgres://nobody:s3cret@127.0.0.1:1/x?connect_timeout=2")
	require.Error(t, err)
	require.Contains(t, out, "dbtest: start a PostgreSQL server: localpg: connect to the server of DBTEST_DATABASE_URL")
	require.NotContains(t, out, "s3cret")
}
