//go:build unix

package localpg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// install is a directory holding a PostgreSQL server's initdb and postgres.
type install struct {
	dir          string // symlinks resolved
	version      string // "15.20"
	major, minor int
}

// findInstall returns the newest installation on PATH or under the glob
// patterns; on a tie the first one found wins (PATH first).
func findInstall(ctx context.Context, patterns []string) (install, bool) {
	var dirs []string
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	for _, p := range patterns {
		m, _ := filepath.Glob(p)
		dirs = append(dirs, m...)
	}
	var (
		best  install
		found bool
		seen  = map[string]bool{}
	)
	for _, d := range dirs {
		if d == "" {
			continue
		}
		pg, err := filepath.EvalSymlinks(filepath.Join(d, "postgres"))
		if err != nil {
			continue
		}
		dir := filepath.Dir(pg)
		if seen[dir] || !isExecutable(pg) || !isExecutable(filepath.Join(dir, "initdb")) {
			continue
		}
		seen[dir] = true
		in, err := probeInstall(ctx, dir)
		if err != nil {
			continue
		}
		if !found || in.major > best.major || (in.major == best.major && in.minor > best.minor) {
			best, found = in, true
		}
	}
	return best, found
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// probeInstall asks dir/postgres for its version.
func probeInstall(ctx context.Context, dir string) (install, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return install{}, fmt.Errorf("postgres --version: %w", err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return install{}, fmt.Errorf("postgres --version: unexpected output %q", strings.TrimSpace(string(out)))
	}
	in := install{dir: dir, version: m[1]}
	in.major, _ = strconv.Atoi(m[1])
	if m[2] != "" {
		in.minor, _ = strconv.Atoi(m[2])
		in.version += "." + m[2]
	}
	return in, nil
}
