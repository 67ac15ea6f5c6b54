package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proxyEnv is the environment variable that makes ProxyMain serve as the
// delaying proxy: "RTT NETWORK ADDRESS", e.g. "1ms tcp 127.0.0.1:5432".
const proxyEnv = "DATALAYER_BENCH_PROXY"

// ProxyMain turns this process into a delaying proxy and exits when Run
// started it as one (see Config.ProxyProcess); otherwise it returns at once.
// A program that sets Config.ProxyProcess calls it first thing in main, a
// test binary in TestMain.
func ProxyMain() {
	spec, ok := os.LookupEnv(proxyEnv)
	if !ok {
		return
	}
	os.Exit(serveProxy(spec, os.Stdin, os.Stdout))
}

// serveProxy runs the proxy spec describes. It writes "listening ADDR" (or
// "error MESSAGE") on out, then answers every "stats" line of in with
// "stats CHUNKS HELD_NS", until in ends: the parent is done or gone.
func serveProxy(spec string, in io.Reader, out io.Writer) int {
	p, err := startProxySpec(spec)
	if err != nil {
		_, _ = fmt.Fprintf(out, "error %v\n", err)
		return 1
	}
	defer func() { _ = p.Close() }()
	if _, err := fmt.Fprintf(out, "listening %s\n", p.Addr()); err != nil {
		return 1
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if sc.Text() != "stats" {
			_, _ = fmt.Fprintf(out, "error unknown request %q\n", sc.Text())
			continue
		}
		chunks, held := p.Stats()
		if _, err := fmt.Fprintf(out, "stats %d %d\n", chunks, int64(held)); err != nil {
			return 1
		}
	}
	return 0
}

func startProxySpec(spec string) (*delayProxy, error) {
	f := strings.SplitN(spec, " ", 3)
	if len(f) != 3 {
		return nil, fmt.Errorf("%s=%q: want \"RTT NETWORK ADDRESS\"", proxyEnv, spec)
	}
	rtt, err := time.ParseDuration(f[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", proxyEnv, err)
	}
	return newDelayProxy(f[1], f[2], rtt)
}

// delayer is a delaying proxy the TPC-B cells connect through: a
// *delayProxy in this process or a *proxyChild.
type delayer interface {
	Addr() *net.TCPAddr
	// stats returns the chunks forwarded so far and the time they were
	// held, summed.
	stats() (chunks int64, held time.Duration, err error)
	Close() error
}

func (p *delayProxy) stats() (int64, time.Duration, error) {
	chunks, held := p.Stats()
	return chunks, held, nil
}

var (
	_ delayer = (*delayProxy)(nil)
	_ delayer = (*proxyChild)(nil)
)

// proxyChild is a delaying proxy in a child process: this executable
// started again with proxyEnv set, which ProxyMain turns into the proxy.
// Its Stats and Close are safe for concurrent use.
type proxyChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *bytes.Buffer
	addr   *net.TCPAddr

	mu    sync.Mutex // one stats exchange at a time
	close sync.Once
	wait  error
}

// startProxyChild starts this executable as a proxy to upstream adding rtt
// and waits until it listens.
func startProxyChild(network, upstream string, rtt time.Duration) (*proxyChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start proxy process: %w", err)
	}
	cmd := exec.Command(exe) // not CommandContext: Close ends it, by closing its stdin
	cmd.Env = append(os.Environ(), proxyEnv+"="+rtt.String()+" "+network+" "+upstream)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start proxy process: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start proxy process: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start proxy process: %w", err)
	}
	c := &proxyChild{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(out), stderr: &stderr}
	line, err := c.stdout.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	var tcp *net.TCPAddr
	if ok {
		tcp, err = net.ResolveTCPAddr("tcp", addr)
	}
	if err != nil || !ok {
		_ = cmd.Process.Kill() // whatever it is, it is not a proxy
		_ = c.Close()
		msg := strings.TrimSpace(strings.TrimPrefix(line, "error "))
		if msg == "" {
			msg = tail(stderr.String(), 5)
		}
		if msg == "" && err != nil {
			msg = err.Error()
		}
		return nil, fmt.Errorf("start proxy process %s (does its main call bench.ProxyMain first?): %s", exe, msg)
	}
	c.addr = tcp
	return c, nil
}

// Addr is the address clients connect to.
func (c *proxyChild) Addr() *net.TCPAddr { return c.addr }

// stats asks the child for its counters.
func (c *proxyChild) stats() (int64, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.stdin, "stats\n"); err != nil {
		return 0, 0, fmt.Errorf("read proxy stats: %w", err)
	}
	line, err := c.stdout.ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("read proxy stats: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "stats" {
		return 0, 0, fmt.Errorf("read proxy stats: unexpected answer %q", line)
	}
	chunks, err1 := strconv.ParseInt(f[1], 10, 64)
	held, err2 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("read proxy stats: unexpected answer %q: %w", line, err)
	}
	return chunks, time.Duration(held), nil
}

// Close ends the child (its stdin closes, it stops) and waits for it.
func (c *proxyChild) Close() error {
	c.close.Do(func() {
		_ = c.stdin.Close()
		c.wait = c.cmd.Wait()
		if c.wait != nil {
			c.wait = fmt.Errorf("proxy process: %w: %s", c.wait, tail(c.stderr.String(), 5))
		}
	})
	return c.wait
}
