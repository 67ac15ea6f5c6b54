package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cortexerp/datalayer/internal/secret"
)

// findTool returns the path of a PostgreSQL client program: given, else on
// PATH, else the newest under /usr/lib/postgresql/*/bin and similar.
func findTool(given, name string) (string, error) {
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			return "", fmt.Errorf("find %s: %w", name, err)
		}
		return given, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var found []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/opt/postgresql@*/bin"} {
		dirs, _ := filepath.Glob(pattern)
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, name)); err == nil {
				found = append(found, filepath.Join(d, name))
			}
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("find %s: not on PATH nor under /usr/lib/postgresql/*/bin: install the PostgreSQL client programs (Debian: postgresql-client) or pass its path", name)
	}
	slices.SortFunc(found, func(a, b string) int { return versionOf(b) - versionOf(a) })
	return found[0], nil
}

// versionOf returns the first number in path (the major version of a
// /usr/lib/postgresql/15/bin path), 0 if none.
func versionOf(path string) int {
	m := regexp.MustCompile(`\d+`).FindString(path)
	n, _ := strconv.Atoi(m)
	return n
}

// toolVersion returns the first line of `tool --version`.
func toolVersion(ctx context.Context, tool string) string {
	out, err := exec.CommandContext(ctx, tool, "--version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// clientConn is how a libpq program reaches one database: the connection
// string without its password, which travels in PGPASSWORD so that it shows
// neither in the process list nor in an error.
type clientConn struct {
	flags []string // before the tool's own arguments
	arg   string
	env   []string
}

func newClientConn(raw string) clientConn {
	cs, err := secret.Parse(raw)
	if err != nil || cs.Password == "" {
		return clientConn{arg: raw} // the tool reports what is wrong with it
	}
	return clientConn{arg: cs.WithoutPassword(), env: []string{"PGPASSWORD=" + cs.Password}}
}

// via returns c connecting to addr instead of the server: -h and -p name
// addr. libpq lets a host or port in the connection string win over those
// flags, so they are taken out of a URL (its host and port, and the host,
// hostaddr and port parameters); a keyword/value string gets addr's host,
// hostaddr and port appended, where a later keyword wins.
func (c clientConn) via(addr *net.TCPAddr) clientConn {
	host, port := addr.IP.String(), strconv.Itoa(addr.Port)
	out := clientConn{flags: []string{"-h", host, "-p", port}, arg: c.arg, env: c.env}
	if u, err := url.Parse(c.arg); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Host = ""
		q := u.Query()
		for _, k := range []string{"host", "hostaddr", "port"} {
			q.Del(k)
		}
		u.RawQuery = q.Encode()
		out.arg = u.String()
		return out
	}
	out.arg = c.arg + " host=" + host + " hostaddr=" + host + " port=" + port
	return out
}

// run runs tool with args and the connection as the last argument and
// returns its combined output; an error carries the output's last lines.
func (c clientConn) run(ctx context.Context, tool string, args ...string) (string, error) {
	out, _, err := c.runCPU(ctx, tool, args...)
	return out, err
}

// runCPU is run that also returns the CPU time (user + system) tool used.
func (c clientConn) runCPU(ctx context.Context, tool string, args ...string) (string, time.Duration, error) {
	cmd := exec.CommandContext(ctx, tool, slices.Concat(c.flags, args, []string{c.arg})...)
	cmd.Env = append(os.Environ(), c.env...)
	out, err := cmd.CombinedOutput()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil && ctx.Err() != nil {
		return string(out), cpu, fmt.Errorf("run %s: %w", filepath.Base(tool), context.Cause(ctx))
	}
	if err != nil {
		return string(out), cpu, fmt.Errorf("run %s: %w: %s", filepath.Base(tool), err, tail(string(out), 5))
	}
	return string(out), cpu, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// pgbenchThreads is pgbench's -j for clients: one thread per core the Go
// variants may use too (GOMAXPROCS), never more than clients.
func pgbenchThreads(clients int) int {
	return max(1, min(clients, runtime.GOMAXPROCS(0)))
}

// pgbenchArgs are the arguments of one pgbench slice, without the connection.
func pgbenchArgs(v variant, clients int, d time.Duration, logPrefix string) []string {
	args := []string{
		"-n", // no VACUUM or TRUNCATE before each slice: every variant sees the same tables
		"-M", "prepared",
		"-c", strconv.Itoa(clients),
		"-j", strconv.Itoa(pgbenchThreads(clients)),
		"-T", strconv.Itoa(int(d / time.Second)),
	}
	if logPrefix != "" {
		args = append(args, "-l", "--log-prefix", logPrefix)
	}
	if v == pgbenchSelect {
		args = append(args, "-S")
	}
	return args
}

var (
	rePgbenchTPS    = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	rePgbenchNum    = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	rePgbenchFailed = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
)

// runPgbenchSlice runs one pgbench slice and reads its summary and its
// per-transaction log (-l) for the latencies.
func runPgbenchSlice(ctx context.Context, pgbench string, conn clientConn, v variant, clients int, d time.Duration, tmp string, server serverCPU) (sliceResult, error) {
	dir, err := os.MkdirTemp(tmp, "pgbench-")
	if err != nil {
		return sliceResult{}, fmt.Errorf("pgbench log dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	server0, serverOK := server.read()
	out, clientCPU, err := conn.runCPU(ctx, pgbench, pgbenchArgs(v, clients, d, filepath.Join(dir, "tx"))...)
	if err != nil {
		return sliceResult{}, fmt.Errorf("%s, %d clients: %w", v, clients, err)
	}
	server1, ok := server.read()
	res, err := parsePgbench(out)
	if err != nil {
		return sliceResult{}, fmt.Errorf("%s, %d clients: %w", v, clients, err)
	}
	res.prof.clientCPU = clientCPU
	if ok && serverOK {
		res.prof.serverCPU = server1 - server0
	}
	logs, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil || len(logs) == 0 {
		return sliceResult{}, fmt.Errorf("%s, %d clients: pgbench wrote no transaction log", v, clients)
	}
	for _, name := range logs {
		lats, err := readPgbenchLog(name)
		if err != nil {
			return sliceResult{}, err
		}
		res.latencies = append(res.latencies, lats...)
	}
	if len(res.latencies) == 0 && res.n > 0 {
		return sliceResult{}, fmt.Errorf("%s, %d clients: pgbench logged none of its %d transactions", v, clients, res.n)
	}
	return res, nil
}

// parsePgbench reads the transaction count, the failures and the TPS
// (without the initial connection time) from pgbench's summary; the slice's
// elapsed time is count/TPS, the time pgbench divided by.
func parsePgbench(out string) (sliceResult, error) {
	mTPS, mNum := rePgbenchTPS.FindStringSubmatch(out), rePgbenchNum.FindStringSubmatch(out)
	if mTPS == nil || mNum == nil {
		return sliceResult{}, fmt.Errorf("parse pgbench output: no tps or transaction count in %q", tail(out, 8))
	}
	tps, err := strconv.ParseFloat(mTPS[1], 64)
	if err != nil {
		return sliceResult{}, fmt.Errorf("parse pgbench tps: %w", err)
	}
	n, err := strconv.ParseInt(mNum[1], 10, 64)
	if err != nil {
		return sliceResult{}, fmt.Errorf("parse pgbench transaction count: %w", err)
	}
	res := sliceResult{n: n}
	if tps > 0 {
		res.elapsed = time.Duration(float64(n) / tps * float64(time.Second))
	}
	if m := rePgbenchFailed.FindStringSubmatch(out); m != nil {
		res.failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return res, nil
}

// readPgbenchLog returns the latencies of a pgbench -l log, whose lines are
// "client_id transaction_no time script_no time_epoch time_us", time in
// microseconds (or "failed"/"skipped", which are left out).
func readPgbenchLog(name string) ([]time.Duration, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read pgbench log: %w", err)
	}
	lats := make([]time.Duration, 0, bytes.Count(data, []byte{'\n'}))
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		us, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			continue
		}
		lats = append(lats, time.Duration(us)*time.Microsecond)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read pgbench log: %w", err)
	}
	return lats, nil
}
