//go:build unix

package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	tempPrefix = "localpg-"     // temp dirs are os.TempDir()/localpg-*
	lockName   = "localpg.lock" // flocked by the owning process while it lives
	logName    = "postgres.log"
)

// stopTimeout bounds a shutdown when the caller's ctx has no deadline.
const stopTimeout = 30 * time.Second

// postmaster is a PostgreSQL server run from binaries in a temp dir:
// root/localpg.lock, root/postgres.log and root/data (PGDATA, unix socket).
// Its methods are called with Server.mu held.
type postmaster struct {
	in       install
	root     string
	data     string
	port     int
	autoPort bool
	settings [][2]string
	cred     *syscall.Credential
	logger   *slog.Logger

	lock   *os.File  // flocked: tells sweep the owner is alive
	wd     *exec.Cmd // the watchdog
	wdIn   *os.File  // its stdin; closes when this process dies
	cmd    *exec.Cmd // the running postmaster, nil when halted
	exited chan struct{}
}

// newPostmaster creates the temp dir and watchdog, prepares a cluster and
// starts it. On error nothing is left behind.
func newPostmaster(ctx context.Context, cfg *config, in install, cred *syscall.Credential) (*postmaster, error) {
	pm := &postmaster{in: in, port: cfg.port, settings: cfg.serverSettings(), cred: cred, logger: cfg.logger}
	return pm.create(ctx, func(ctx context.Context) error { return pm.prepareData(ctx, cfg.cacheDir) })
}

// create makes pm's temp dir and watchdog, fills its data dir with prepare
// and starts it (on a free port unless pm.port is set). On error nothing is
// left behind.
func (pm *postmaster) create(ctx context.Context, prepare func(context.Context) error) (*postmaster, error) {
	began := time.Now()
	root, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	pm.root, pm.data, pm.autoPort = root, filepath.Join(root, "data"), pm.port == 0
	if err := pm.init(ctx, prepare); err != nil {
		_ = pm.stop(context.WithoutCancel(ctx))
		return nil, err
	}
	pm.logger.Debug("localpg: postmaster ready", "dir", root, "port", pm.port, "took", time.Since(began))
	return pm, nil
}

func (pm *postmaster) init(ctx context.Context, prepare func(context.Context) error) error {
	if err := pm.lockRoot(); err != nil {
		return err
	}
	if err := pm.startWatchdog(); err != nil {
		return err
	}
	if err := prepare(ctx); err != nil {
		return err
	}
	if pm.autoPort {
		port, err := freePort()
		if err != nil {
			return err
		}
		pm.port = port
	}
	return pm.start(ctx)
}

// lockRoot flocks root/localpg.lock for as long as we live and hands root to
// the user the server runs as.
func (pm *postmaster) lockRoot() error {
	f, err := os.OpenFile(filepath.Join(pm.root, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("create lock file: %w", err)
	}
	pm.lock = f
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	if pm.cred != nil {
		if err := os.Chown(pm.root, int(pm.cred.Uid), int(pm.cred.Gid)); err != nil {
			return fmt.Errorf("hand %s to user postgres: %w", pm.root, err)
		}
	}
	return nil
}

// watchdogScript runs in its own process group with a pipe from us as stdin.
// Lines carry the current postmaster pid (empty: none). At EOF, which comes
// when we stop or die for any reason, it stops the postmaster (immediate
// shutdown, then SIGKILL; a zombie counts as gone) and removes the temp dir.
// $1 is the temp dir, $2 the data dir.
const watchdogScript = `pid=
while read -r line; do pid=$line; done
if [ -z "$pid" ] && [ -f "$2/postmaster.pid" ]; then read -r pid < "$2/postmaster.pid"; fi
case $pid in ''|*[!0-9]*) pid= ;; esac
if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
	n=0
	while [ $n -lt 100 ] && kill -0 "$pid" 2>/dev/null; do
		st=
		if [ -r "/proc/$pid/stat" ]; then read -r _ _ st _ < "/proc/$pid/stat"; fi
		if [ "$st" = Z ]; then break; fi
		sleep 0.1
		n=$((n+1))
	done
	kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$1"
`

func (pm *postmaster) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("watchdog pipe: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "localpg-watchdog", pm.root, pm.data)
	cmd.Stdin = r
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	_ = r.Close()
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("start watchdog: %w", err)
	}
	pm.wd, pm.wdIn = cmd, w
	return nil
}

// notify tells the watchdog which postmaster pid to stop ("": none).
func (pm *postmaster) notify(pid string) {
	if pm.wdIn != nil {
		_, _ = io.WriteString(pm.wdIn, pid+"\n")
	}
}

// url is the admin URL over TCP.
func (pm *postmaster) url() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(pm.port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// start launches the postmaster and waits until it accepts connections. A
// port taken meanwhile by another process is replaced when it was ours to pick.
func (pm *postmaster) start(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		logOffset := fileSize(filepath.Join(pm.root, logName))
		err := pm.launch()
		if err == nil {
			err = waitReady(ctx, pm.url(), pm.exited)
		}
		if err == nil {
			return nil
		}
		if pm.cmd != nil {
			_ = pm.shutdown(context.WithoutCancel(ctx), syscall.SIGQUIT)
		}
		log := pm.logSince(logOffset)
		if errors.Is(err, errExited) && pm.autoPort && attempt < 3 && strings.Contains(log, "could not bind") {
			port, perr := freePort()
			if perr == nil {
				pm.port = port
				continue
			}
		}
		return fmt.Errorf("start postgres on port %d: %w\nserver log:\n%s", pm.port, err, log)
	}
}

// launch starts the postgres process in its own process group.
func (pm *postmaster) launch() error {
	logf, err := os.OpenFile(filepath.Join(pm.root, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer logf.Close()
	sockets := pm.data
	if len(sockets)+len("/.s.PGSQL.65535") >= 104 { // sun_path limit (macOS; 108 on Linux)
		sockets = ""
	}
	args := []string{"-D", pm.data, "-p", strconv.Itoa(pm.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + sockets}
	for _, s := range pm.settings {
		args = append(args, "-c", s[0]+"="+s[1])
	}
	cmd := exec.Command(filepath.Join(pm.in.dir, "postgres"), args...)
	cmd.Dir = pm.root
	cmd.Env = pm.in.environ()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: pm.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { // internal/leakcheck names it (TestSharedServerGoroutines checks the name)
		_ = cmd.Wait()
		close(exited)
	}()
	pm.cmd, pm.exited = cmd, exited
	pm.notify(strconv.Itoa(cmd.Process.Pid))
	return nil
}

// shutdown sends sig (SIGINT: fast shutdown; SIGQUIT: immediate) and waits
// for the postmaster to exit; past ctx (or stopTimeout) it escalates to an
// immediate shutdown, then SIGKILL.
func (pm *postmaster) shutdown(ctx context.Context, sig syscall.Signal) error {
	cmd, exited := pm.cmd, pm.exited
	pm.cmd = nil
	pm.notify("")
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	return fmt.Errorf("shut down postgres: %w; killed it", ctx.Err())
}

// halt shuts the postmaster down, keeping the data dir and port.
func (pm *postmaster) halt(ctx context.Context) error {
	if pm.cmd == nil {
		return nil
	}
	return pm.shutdown(ctx, syscall.SIGINT)
}

// resume starts a halted postmaster again on the same port.
func (pm *postmaster) resume(ctx context.Context) error {
	if pm.cmd != nil {
		return nil
	}
	autoPort := pm.autoPort
	pm.autoPort = false // the port is part of the URL callers hold
	defer func() { pm.autoPort = autoPort }()
	return pm.start(ctx)
}

// stop shuts the postmaster down and removes everything; it also undoes a
// partial newPostmaster.
func (pm *postmaster) stop(ctx context.Context) error {
	var errs []error
	if pm.cmd != nil {
		// Escalating to a kill is fine here: the data goes anyway.
		if err := pm.shutdown(ctx, syscall.SIGINT); err != nil {
			pm.logger.Debug("localpg: stop", "err", err)
		}
	}
	if err := os.RemoveAll(pm.root); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", pm.root, err))
	}
	if pm.wd != nil {
		_ = pm.wdIn.Close()
		done := make(chan struct{})
		go func() {
			_ = pm.wd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = pm.wd.Process.Kill()
		}
	}
	if pm.lock != nil {
		_ = pm.lock.Close()
	}
	pm.logger.Debug("localpg: stopped", "dir", pm.root)
	return errors.Join(errs...)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns the tail of the server log written after offset.
func (pm *postmaster) logSince(offset int64) string {
	b, err := os.ReadFile(filepath.Join(pm.root, logName))
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return lastLines(string(b[offset:]), 20)
}
