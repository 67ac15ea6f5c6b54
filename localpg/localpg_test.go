//go:build unix

package localpg_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cortexerp/datalayer/internal/leakcheck"
	"github.com/cortexerp/datalayer/localpg"
)

// binaries forces the binaries source, whatever the environment says.
var binaries = localpg.WithSources(localpg.SourceBinaries)

func start(t testing.TB, opts ...localpg.Option) *localpg.Server {
	t.Helper()
	s, err := localpg.Start(t.Context(), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
	return s
}

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// facts returns the postmaster pid and data directory of the server at url.
func facts(t testing.TB, url string) (pid int, dataDir string) {
	t.Helper()
	conn := connect(t, url)
	require.NoError(t, conn.QueryRow(t.Context(), "SHOW data_directory").Scan(&dataDir))
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err = strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	require.NoError(t, err)
	require.NoError(t, conn.Close(t.Context()))
	return pid, dataDir
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) < 3 || f[2] != "Z"
}

func TestStartFromBinariesRunsAQuery(t *testing.T) {
	t.Parallel()
	began := time.Now()
	s := start(t, binaries)
	t.Logf("ready after %v: %v", time.Since(began), s)
	require.Equal(t, localpg.SourceBinaries, s.Source())
	require.Regexp(t, `^postgres://postgres@127\.0\.0\.1:\d+/postgres\?sslmode=disable$`, s.URL())

	conn := connect(t, s.URL())
	var fsync, maxConns, user string
	require.NoError(t, conn.QueryRow(t.Context(),
		"SELECT current_setting('fsync'), current_setting('max_connections'), current_user").Scan(&fsync, &maxConns, &user))
	require.Equal(t, []string{"off", "200", "postgres"}, []string{fsync, maxConns, user})

	_, err := conn.Exec(t.Context(), "CREATE DATABASE other")
	require.NoError(t, err)
	var db string
	require.NoError(t, connect(t, s.URLFor("other")).QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
	require.Equal(t, "other", db)
}

func TestStopLeavesNothing(t *testing.T) {
	t.Parallel()
	s, err := localpg.Start(t.Context(), binaries)
	require.NoError(t, err)
	pid, dataDir := facts(t, s.URL())
	require.True(t, alive(pid))

	require.NoError(t, s.Stop(t.Context()))
	require.False(t, alive(pid), "postmaster still running")
	require.NoDirExists(t, filepath.Dir(dataDir))
	require.NoError(t, s.Stop(t.Context()), "a second Stop")
	require.ErrorIs(t, s.Halt(t.Context()), localpg.ErrStopped)
}

func TestHaltAndResumeKeepPortAndData(t *testing.T) {
	t.Parallel()
	s := start(t, binaries)
	conn := connect(t, s.URL())
	_, err := conn.Exec(t.Context(), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(t.Context()))

	require.NoError(t, s.Halt(t.Context()))
	_, err = pgx.Connect(t.Context(), s.URL())
	require.Error(t, err, "connect to a halted server")
	require.NoError(t, s.Halt(t.Context()), "halting twice")

	require.NoError(t, s.Resume(t.Context()))
	require.NoError(t, s.Resume(t.Context()), "resuming a running server")
	var v int
	require.NoError(t, connect(t, s.URL()).QueryRow(t.Context(), "SELECT v FROM kept").Scan(&v))
	require.Equal(t, 42, v)
}

func TestWithPortListensThere(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	s := start(t, binaries, localpg.WithPort(port))
	require.Contains(t, s.URL(), fmt.Sprintf("127.0.0.1:%d/", port))
	var got int
	require.NoError(t, connect(t, s.URL()).QueryRow(t.Context(), "SELECT inet_server_port()").Scan(&got))
	require.Equal(t, port, got)
}

func TestOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	_, err := localpg.Start(t.Context(), localpg.WithPort(70000), localpg.WithSetting("bad name", "1"))
	require.ErrorContains(t, err, "WithPort(70000)")
	require.ErrorContains(t, err, `WithSetting: bad setting name "bad name"`)
}

// TestEnvURLIsHonoured is not parallel: it sets DATABASE_URL.
func TestEnvURLIsHonoured(t *testing.T) {
	backing := start(t, binaries)
	// Trust auth accepts any password: use one to check it never shows.
	withPassword := strings.Replace(backing.URL(), "postgres@", "postgres:s3cretpw@", 1)

	for _, name := range []string{"DATABASE_URL", "TEST_DATABASE_URL"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", "")
			t.Setenv("TEST_DATABASE_URL", "")
			t.Setenv(name, withPassword)
			s, err := localpg.Start(t.Context())
			require.NoError(t, err)
			require.Equal(t, localpg.SourceEnv, s.Source())
			require.Equal(t, withPassword, s.URL())
			require.Equal(t, strings.Replace(withPassword, "/postgres?", "/other?", 1), s.URLFor("other"))
			for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
				require.NotContains(t, fmt.Sprintf(f, s), "s3cretpw", f)
			}
			require.ErrorIs(t, s.Halt(t.Context()), localpg.ErrNotSupported)
			require.NoError(t, s.Stop(t.Context()))
			var one int
			require.NoError(t, connect(t, backing.URL()).QueryRow(t.Context(), "SELECT 1").Scan(&one),
				"Stop must leave an env server running")
		})
	}

	t.Run("a keyword/value string", func(t *testing.T) {
		u, err := url.Parse(backing.URL())
		require.NoError(t, err)
		t.Setenv("DATABASE_URL", fmt.Sprintf("host=127.0.0.1 port=%s user=postgres password=s3cretpw dbname=postgres sslmode=disable", u.Port()))
		s, err := localpg.Start(t.Context())
		require.NoError(t, err)
		require.NotContains(t, s.String(), "s3cretpw")
		_, err = connect(t, backing.URL()).Exec(t.Context(), `CREATE DATABASE "it's"`)
		require.NoError(t, err)
		var db string
		require.NoError(t, connect(t, s.URLFor("it's")).QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
		require.Equal(t, "it's", db)
	})

	t.Run("WithPort starts its own server", func(t *testing.T) {
		t.Setenv("DATABASE_URL", withPassword)
		s := start(t, localpg.WithSources(localpg.SourceEnv, localpg.SourceBinaries), localpg.WithPort(freePort(t)))
		require.Equal(t, localpg.SourceBinaries, s.Source())
	})

	t.Run("an unreachable server is an error naming the variable, without the password", func(t *testing.T) {
		t.Setenv("DATABASE_URL", fmt.Sprintf("postgres://u:s3cretpw@127.0.0.1:%d/db?connect_timeout=2", freePort(t)))
		_, err := localpg.Start(t.Context())
		require.ErrorContains(t, err, "DATABASE_URL")
		require.NotContains(t, err.Error(), "s3cretpw")
	})

	t.Run("a malformed URL is an error naming the variable, without the password", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "postgres://u:s3cretpw@host:notaport/db")
		_, err := localpg.Start(t.Context())
		require.ErrorContains(t, err, "DATABASE_URL is not a valid connection string")
		require.NotContains(t, err.Error(), "s3cretpw")
	})
}

// TestNothingFoundSaysWhatToDo is not parallel: it empties PATH.
func TestNothingFoundSaysWhatToDo(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("TEST_DATABASE_URL", "")
	t.Setenv("PATH", "")
	began := time.Now()
	_, err := localpg.Start(t.Context(), localpg.WithBinDirs(filepath.Join(t.TempDir(), "*", "bin")))
	require.ErrorIs(t, err, localpg.ErrNoServer)
	for _, want := range []string{"DATABASE_URL", "TEST_DATABASE_URL", "Docker", "install", "initdb"} {
		require.ErrorContains(t, err, want)
	}
	t.Logf("%v (after %v)", err, time.Since(began))
}

func TestParallelStartsShareOneCachedCluster(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	type result struct {
		s   *localpg.Server
		err error
	}
	results := make(chan result, 3)
	for range 3 {
		go func() {
			s, err := localpg.Start(t.Context(), binaries, localpg.WithCacheDir(cache))
			results <- result{s, err}
		}()
	}
	for range 3 {
		r := <-results
		require.NoError(t, r.err)
		t.Cleanup(func() { require.NoError(t, r.s.Stop(context.Background())) })
		_, dataDir := facts(t, r.s.URL())
		if os.Geteuid() == 0 { // the server runs as postgres, not root
			fi, err := os.Stat(dataDir)
			require.NoError(t, err)
			require.NotZero(t, fi.Sys().(*syscall.Stat_t).Uid)
		}
	}
	clusters, err := filepath.Glob(filepath.Join(cache, "*", "PG_VERSION"))
	require.NoError(t, err)
	require.Len(t, clusters, 1)
}

func TestSweepRemovesDirsOfDeadProcesses(t *testing.T) {
	t.Parallel()
	stale, err := os.MkdirTemp("", "localpg-")
	require.NoError(t, err)
	lock := filepath.Join(stale, "localpg.lock")
	require.NoError(t, os.WriteFile(lock, []byte("1\n"), 0o644)) // nobody holds its flock
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(lock, old, old))

	start(t, binaries)
	require.NoDirExists(t, stale)
}

// TestSharedServerGoroutines is not parallel: it counts goroutines. The
// TestMain of the packages using dbtest's process-wide server ignores that
// server's goroutines by the names in leakcheck: this checks that they are the
// names of all a running server has.
func TestSharedServerGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	start(t, binaries)
	require.Error(t, goleak.Find(before), "a running server has goroutines")
	require.NoError(t, goleak.Find(append(leakcheck.SharedServer(), before)...), "leakcheck.SharedServer ignores them")
}

// The child-process tests re-run this test binary as a process that starts a
// server and reports its URL on stdout. The parent then learns the server's
// pid and data directory from the server itself and acknowledges with a line
// on the child's stdin; only then does the child go on: it exits at once
// ("exit") or waits to be signalled ("wait"). Without the acknowledgement an
// exiting child would take its server away before the parent had seen it.
const childEnv = "LOCALPG_TEST_CHILD"

func TestChildProcess(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("helper process for the tests that kill it")
	}
	s, err := localpg.Start(context.Background(), binaries)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	fmt.Println("URL", s.URL())
	stdin := bufio.NewReader(os.Stdin)
	if _, err := stdin.ReadString('\n'); err != nil {
		os.Exit(5) // the parent went away without acknowledging
	}
	if mode == "exit" {
		os.Exit(0) // as a test binary does, with the shared server never stopped
	}
	_, _ = io.Copy(io.Discard, stdin) // until a signal ends us, or the parent closes stdin
	os.Exit(4)
}

// child is a running TestChildProcess and the server it started.
type child struct {
	cmd     *exec.Cmd
	pid     int    // the postmaster's
	dataDir string // the server's
	// tmp is the child's TMPDIR, of its own: only the child's watchdog may
	// clean up after it, not the sweep of another process starting a server
	// meanwhile (which would let the tests pass for the wrong reason).
	tmp string
	// lastExit is the read end of a pipe whose write end the child holds as
	// fd 3, without close-on-exec: every process it starts (watchdog,
	// postmaster, backends) inherits it, so a read sees EOF once the last of
	// them has exited.
	lastExit *os.File
}

// runChild starts the helper process and returns it with its server's facts,
// learnt from the server while it surely runs; the child goes on (see
// TestChildProcess) only after that.
func runChild(t *testing.T, mode string) *child {
	t.Helper()
	// Not named localpg-*, so that no sweep touches it; open to the server's user.
	tmp, err := os.MkdirTemp("", "localpg_test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(tmp, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })

	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "TMPDIR="+tmp)
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{w}
	cmd.WaitDelay = 5 * time.Second // fails the test if a child holds our pipe
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	ack, err := cmd.StdinPipe()
	require.NoError(t, err)
	err = cmd.Start()
	require.NoError(t, w.Close()) // the child's copy is the only one now
	require.NoError(t, err)
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "URL ")
	require.True(t, ok, "child said %q", line)
	c := &child{cmd: cmd, tmp: tmp, lastExit: r}
	c.pid, c.dataDir = facts(t, url)
	require.True(t, alive(c.pid), "postmaster %d of the child", c.pid)
	require.Equal(t, tmp, filepath.Dir(filepath.Dir(c.dataDir)), "the child's server lives in its TMPDIR")
	_, err = io.WriteString(ack, "go\n")
	require.NoError(t, err)
	return c
}

// requireGone waits (bounded) until the child and everything it started have
// exited, then checks that its postmaster is gone and the temp dir removed.
func (c *child) requireGone(t *testing.T) {
	t.Helper()
	require.NoError(t, c.lastExit.SetReadDeadline(time.Now().Add(30*time.Second)))
	n, err := io.Copy(io.Discard, c.lastExit)
	require.NoError(t, err, "waiting for the child's processes to exit")
	require.Zero(t, n)
	require.False(t, alive(c.pid), "postmaster %d still runs", c.pid)
	require.NoDirExists(t, filepath.Dir(c.dataDir))
	entries, err := os.ReadDir(c.tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "left in the child's TMPDIR")
}

func TestKilledProcessLeavesNothing(t *testing.T) {
	t.Parallel()
	c := runChild(t, "wait")
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	_ = c.cmd.Wait()
	c.requireGone(t)
}

func TestInterruptedProcessStopsItsServerAndDies(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			c := runChild(t, "wait")
			require.NoError(t, c.cmd.Process.Signal(sig))
			err := c.cmd.Wait()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			ws := exit.Sys().(syscall.WaitStatus)
			require.True(t, ws.Signaled(), "child should die of the signal, got %v", err)
			require.Equal(t, sig, ws.Signal())
			c.requireGone(t)
		})
	}
}

func TestExitedProcessLeavesNothing(t *testing.T) {
	t.Parallel()
	c := runChild(t, "exit")
	require.NoError(t, c.cmd.Wait())
	c.requireGone(t)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkStart measures Start (until the server accepts connections) from
// binaries, with a cached cluster and with initdb, Stop excluded.
func BenchmarkStart(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cache string
	}{
		{"cached", b.TempDir()},
		{"initdb", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.cache != "" { // fill the cache outside the measurement
				s, err := localpg.Start(b.Context(), binaries, localpg.WithCacheDir(bc.cache))
				require.NoError(b, err)
				require.NoError(b, s.Stop(b.Context()))
			}
			for b.Loop() {
				s, err := localpg.Start(b.Context(), binaries, localpg.WithCacheDir(bc.cache))
				require.NoError(b, err)
				b.StopTimer()
				require.NoError(b, s.Stop(b.Context()))
				b.StartTimer()
			}
		})
	}
}

// TestUnreachableDockerFallsThrough is not parallel: it sets DOCKER_HOST.
// (testcontainers caches its view of Docker per process: one case only.)
func TestUnreachableDockerFallsThrough(t *testing.T) {
	t.Setenv("DOCKER_HOST", os.Getenv("LOCALPG_TEST_DOCKER_HOST"))
	if os.Getenv("DOCKER_HOST") == "" {
		t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "docker.sock"))
	}
	began := time.Now()
	s, err := localpg.Start(t.Context(), localpg.WithSources(localpg.SourceDocker, localpg.SourceBinaries))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
	require.Equal(t, localpg.SourceBinaries, s.Source())
	t.Logf("fell through to binaries, ready after %v", time.Since(began))
}
