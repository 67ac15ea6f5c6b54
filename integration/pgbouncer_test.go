package integration

import (
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/db"
	"github.com/cortexerp/datalayer/dbtest"
)

// pgbouncerBin returns the PgBouncer binary, or skips the test if there is
// none (fails it under CI=true).
func pgbouncerBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer"
		if _, err := os.Stat(bin); err != nil {
			const missing = "pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)"
			if os.Getenv("CI") == "true" {
				t.Fatal(missing + "; CI=true: this test must run in CI")
			}
			t.Skip(missing)
		}
	}
	return bin
}

// TestMigrateBehindPgBouncer migrates an empty database through PgBouncer in
// transaction pooling mode with the table lock (cmd/migrate -pgbouncer), up
// to the last of the embedded migrations.
func TestMigrateBehindPgBouncer(t *testing.T) {
	t.Parallel()
	bin := pgbouncerBin(t)
	names, err := fs.Glob(db.Migrations, "*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	last := names[len(names)-1]
	bounced := startPgBouncer(t, bin, dbtest.NewURL(t, dbtest.WithoutMigrations()))
	out := migrateCmd(t, bounced, "-pgbouncer", "up")
	require.Contains(t, out, last)
	require.Equal(t, fmt.Sprintf("%d\n", len(names)), migrateCmd(t, bounced, "-pgbouncer", "version"))
}

// startPgBouncer runs a PgBouncer in transaction pooling mode in front of the
// database at direct, until the test ends, and returns the URL to reach the
// same database through it.
func startPgBouncer(t *testing.T, bin, direct string) string {
	t.Helper()
	u, err := url.Parse(direct)
	require.NoError(t, err)
	password, _ := u.User.Password()
	// Not t.TempDir: its parent is private to this user, and PgBouncer may
	// run as the postgres user.
	dir, err := os.MkdirTemp("", "pgbouncer-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	port := freePort(t)
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 200
default_pool_size = 8
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, u.Hostname(), u.Port(), port, filepath.Join(dir, "users.txt"), filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "users.txt"), fmt.Appendf(nil, "%q %q\n", u.User.Username(), password), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644))

	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 { // PgBouncer refuses to run as root
		pg, err := user.Lookup("postgres")
		require.NoError(t, err, "running as root needs a postgres user to run PgBouncer as")
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "PgBouncer did not listen; its log:\n%s\n%s", readFile(filepath.Join(dir, "pgbouncer.log")), &stderr)

	through := *u
	through.Host = addr
	return through.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}
