package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// serverCPU reads the CPU time a PostgreSQL server on this machine has
// used: the postmaster's own and its children's (reaped children included),
// from /proc. Its zero value reads nothing (a remote server, another OS).
type serverCPU struct {
	postmaster int
}

// newServerCPU finds the postmaster of the server admin is connected to
// through its data directory's postmaster.pid; it returns the zero
// serverCPU when that cannot be read.
func newServerCPU(ctx context.Context, admin *pgx.Conn) serverCPU {
	var dir string
	if err := admin.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err != nil {
		return serverCPU{}
	}
	f, err := os.Open(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return serverCPU{}
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return serverCPU{}
	}
	pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil {
		return serverCPU{}
	}
	s := serverCPU{postmaster: pid}
	if _, ok := s.read(); !ok {
		return serverCPU{}
	}
	return s
}

// read returns the server's CPU time so far (user + system).
func (s serverCPU) read() (time.Duration, bool) {
	if s.postmaster == 0 {
		return 0, false
	}
	st, ok := procStat(s.postmaster)
	if !ok {
		return 0, false
	}
	total := st.utime + st.stime + st.cutime + st.cstime
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if c, ok := procStat(pid); ok && c.ppid == s.postmaster {
			total += c.utime + c.stime + c.cutime + c.cstime
		}
	}
	return time.Duration(total) * clockTick, true
}

type pstat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// procStat parses /proc/<pid>/stat.
func procStat(pid int) (pstat, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return pstat{}, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if i < 0 || i+2 > len(s) {
		return pstat{}, false
	}
	f := strings.Fields(s[i+2:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return pstat{}, false
	}
	var st pstat
	st.ppid, _ = strconv.Atoi(f[1])
	nums := []*int64{&st.utime, &st.stime, &st.cutime, &st.cstime}
	for k, p := range nums {
		n, err := strconv.ParseInt(f[11+k], 10, 64)
		if err != nil {
			return pstat{}, false
		}
		*p = n
	}
	return st, true
}

// countingConn counts the writes to a connection: pgx flushes its buffer
// once per round trip, so writes are round trips.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}
