package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cortexerp/datalayer/localpg"
)

// environment describes the machine, the versions and the server settings a
// report was measured with.
type environment struct {
	GoVersion  string
	OS, Arch   string
	CPUs       int    // logical CPUs the OS reports
	GOMAXPROCS int    // what the Go variants could use
	CPUModel   string // from /proc/cpuinfo; "unknown" elsewhere
	PgxVersion string
	// Server is the PostgreSQL version; ServerSource says where localpg
	// found it ("binaries", "docker" or "env").
	Server, ServerSource string
	// Pgbench and Psql are the client programs' --version lines.
	Pgbench, Psql string
	// Settings are the server settings that matter to these numbers.
	Settings []setting
	// LoadBefore and LoadAfter are the machine's load averages (1, 5 and
	// 15 minutes, from /proc/loadavg) when the run started and ended: other
	// work on the machine shows there.
	LoadBefore, LoadAfter string
}

// setting is one server setting as SHOW prints it.
type setting struct {
	Name, Value string
}

// settingNames are the settings a report records: durability first (localpg
// turns it off for tests), then memory, WAL and concurrency.
var settingNames = []string{
	"fsync", "synchronous_commit", "full_page_writes", "wal_level",
	"shared_buffers", "max_wal_size", "checkpoint_timeout", "autovacuum",
	"max_connections", "default_transaction_isolation",
}

// readEnvironment describes the machine, the client programs and the server
// settings of srv.
func readEnvironment(ctx context.Context, admin *pgx.Conn, srv *localpg.Server, pgbench, psql string) (environment, error) {
	e := environment{
		GoVersion:    runtime.Version(),
		OS:           runtime.GOOS,
		Arch:         runtime.GOARCH,
		CPUs:         runtime.NumCPU(),
		GOMAXPROCS:   runtime.GOMAXPROCS(0),
		CPUModel:     cpuModel(),
		PgxVersion:   moduleVersion("github.com/jackc/pgx/v5"),
		ServerSource: srv.Source().String(),
		Pgbench:      toolVersion(ctx, pgbench),
		Psql:         toolVersion(ctx, psql),
		LoadBefore:   loadAverage(),
	}
	if err := admin.QueryRow(ctx, "SHOW server_version").Scan(&e.Server); err != nil {
		return e, fmt.Errorf("read server version: %w", err)
	}
	for _, name := range settingNames {
		var v string
		if err := admin.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return e, fmt.Errorf("read setting %s: %w", name, err)
		}
		e.Settings = append(e.Settings, setting{Name: name, Value: v})
	}
	return e, nil
}

// setting returns the value of the named setting, "" if not recorded.
func (e environment) setting(name string) string {
	for _, s := range e.Settings {
		if s.Name == name {
			return s.Value
		}
	}
	return ""
}

// loadAverage returns the first three fields of /proc/loadavg, "unknown"
// where there is none.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// moduleVersion is the version of module path in this binary's build.
func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, m := range info.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return "unknown"
}
