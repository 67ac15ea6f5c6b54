// Package localnats starts a NATS server with JetStream for tests and demos:
// the nats-server program (Debian package nats-server) on a free port of
// 127.0.0.1, its JetStream store in a temporary directory, run as the
// current user. It never uses the NATS server a machine may already run on
// port 4222.
//
// [Start] returns once the server accepts connections: it reads the
// server's log until the server says which port it listens on and that it
// is ready, then connects to make sure. [Server.Stop] kills it and removes
// its directory. Package localnatstest wraps it for tests (skip, or fail
// under CI=true, when nats-server is missing).
package localnats

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// BinaryEnv names the environment variable that overrides where the
// nats-server program is found.
const BinaryEnv = "NATS_SERVER_BIN"

// debianBinary is where Debian's nats-server package installs the program.
const debianBinary = "/usr/sbin/nats-server"

// ErrNoBinary reports that no nats-server program was found.
var ErrNoBinary = errors.New("nats-server not found: install the Debian package nats-server (apt-get install nats-server), put nats-server on PATH or set " + BinaryEnv)

// Binary returns the path of the nats-server program: $NATS_SERVER_BIN when
// set (it must exist), else nats-server on PATH, else /usr/sbin/nats-server.
// It returns an error wrapping [ErrNoBinary] when there is none.
func Binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, errors.Join(ErrNoBinary, err))
		}
		return p, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(debianBinary); err == nil {
		return debianBinary, nil
	}
	return "", ErrNoBinary
}

// Server is a running nats-server. Its methods are safe for concurrent use.
type Server struct {
	url    string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	log    *tail

	stopOnce sync.Once
	stopErr  error
}

// Option configures [Start].
type Option interface{ apply(*config) error }

type config struct {
	binary string
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// WithBinary runs the nats-server program at path instead of the one
// [Binary] finds.
func WithBinary(path string) Option {
	return optionFunc(func(c *config) error {
		if path == "" {
			return errors.New("WithBinary: path must not be empty")
		}
		c.binary = path
		return nil
	})
}

// startTimeout bounds a start whose ctx has no deadline.
const startTimeout = 30 * time.Second

// listening is the log line that names the client port.
var listening = regexp.MustCompile(`Listening for client connections on (\S+:\d+)`)

// Start runs a nats-server with JetStream on a free port of 127.0.0.1 and
// returns once it accepts connections, or an error (with the server's log)
// when it exits first or ctx ends. Without a deadline in ctx it waits 30s at
// most.
func Start(ctx context.Context, opts ...Option) (*Server, error) {
	var c config
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, errors.New("nil option"))
			continue
		}
		if err := o.apply(&c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("localnats: %w", err)
	}
	if c.binary == "" {
		p, err := Binary()
		if err != nil {
			return nil, fmt.Errorf("localnats: %w", err)
		}
		c.binary = p
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}

	dir, err := os.MkdirTemp("", "localnats-")
	if err != nil {
		return nil, fmt.Errorf("localnats: %w", err)
	}
	// -p -1: the server picks a free port itself, so no other process can
	// take it between our choice and its bind.
	cmd := exec.Command(c.binary, "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", filepath.Join(dir, "store"), "-n", "localnats")
	cmd.Dir = dir
	setProcAttr(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("localnats: %w", err)
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("localnats: run %s: %w", c.binary, err)
	}
	s := &Server{dir: dir, cmd: cmd, exited: make(chan struct{}), log: &tail{max: 64}}
	ready := make(chan string, 1) // the client address, once the server is ready
	var logDone sync.WaitGroup
	logDone.Go(func() { s.readLog(stderr, ready) })
	go func() {
		logDone.Wait() // Wait closes the pipe: read it to the end first
		_ = cmd.Wait()
		close(s.exited)
	}()

	select {
	case addr := <-ready:
		s.url = "nats://" + addr
	case <-s.exited:
		err = errors.New("nats-server exited during start-up")
	case <-ctx.Done():
		err = fmt.Errorf("wait for nats-server to be ready: %w", ctx.Err())
	}
	if err == nil {
		err = s.ping(ctx)
	}
	if err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("localnats: %w\nserver log:\n%s", err, s.log.String())
	}
	return s, nil
}

// readLog keeps the last lines of the server's log and sends the client
// address on ready once the server says it is ready.
func (s *Server) readLog(r io.Reader, ready chan<- string) {
	sc := bufio.NewScanner(r)
	var addr string
	sent := false
	for sc.Scan() {
		line := sc.Text()
		s.log.add(line)
		if sent {
			continue
		}
		if m := listening.FindStringSubmatch(line); m != nil {
			addr = m[1]
		}
		if addr != "" && strings.Contains(line, "Server is ready") {
			ready <- addr
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// ping connects until a connection succeeds or ctx ends.
func (s *Server) ping(ctx context.Context) error {
	delay := 5 * time.Millisecond
	for {
		nc, err := nats.Connect(s.url, nats.Timeout(time.Second), nats.NoReconnect())
		if err == nil {
			nc.Close()
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("nats-server exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("connect to %s: %w (last attempt: %w)", s.url, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// URL is the server's client URL (nats://127.0.0.1:PORT).
func (s *Server) URL() string { return s.url }

// Dir is the server's directory (its JetStream store is under it); Stop
// removes it.
func (s *Server) Dir() string { return s.dir }

// Log returns the last lines the server logged.
func (s *Server) Log() string { return s.log.String() }

// Stop kills the server, waits for it to exit and removes its directory.
// Calling it again returns the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
		if err := os.RemoveAll(s.dir); err != nil {
			s.stopErr = fmt.Errorf("localnats: remove %s: %w", s.dir, err)
		}
	})
	return s.stopErr
}

// tail keeps the last max lines written to it.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == t.max {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, line)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
