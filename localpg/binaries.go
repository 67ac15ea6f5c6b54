//go:build unix

package localpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// install is a directory holding a PostgreSQL server's initdb and postgres.
type install struct {
	dir          string // symlinks resolved
	libDir       string // a self-contained build's ../lib, put first in LD_LIBRARY_PATH; "" for a system package
	version      string // "15.20"
	major, minor int
}

// environ is the environment to run the installation's programs in: ours
// without PG* variables, which could redirect initdb or postgres, and with
// libDir first in LD_LIBRARY_PATH.
func (in install) environ() []string {
	var (
		env []string
		ld  string
	)
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "PG"):
		case in.libDir != "" && strings.HasPrefix(kv, "LD_LIBRARY_PATH="):
			ld = strings.TrimPrefix(kv, "LD_LIBRARY_PATH=")
		default:
			env = append(env, kv)
		}
	}
	if in.libDir != "" {
		if ld != "" {
			ld = string(filepath.ListSeparator) + ld
		}
		env = append(env, "LD_LIBRARY_PATH="+in.libDir+ld)
	}
	return env
}

// bundledLibDir returns dir/../lib when it holds versioned shared libraries
// (libicuuc.so.60, libpq.so.5.17, …): a build that ships its own, like the
// embedded-postgres packages. A system package's lib holds only server
// modules (plpgsql.so) and needs no LD_LIBRARY_PATH.
func bundledLibDir(dir string) string {
	lib := filepath.Join(filepath.Dir(dir), "lib")
	if m, _ := filepath.Glob(filepath.Join(lib, "lib*.so.*")); len(m) > 0 {
		return lib
	}
	return ""
}

// installAt returns the installation in dir, or in dir/bin.
func installAt(ctx context.Context, dir string) (install, error) {
	for _, d := range []string{dir, filepath.Join(dir, "bin")} {
		if real, ok := binDir(d); ok {
			return probeInstall(ctx, real)
		}
	}
	return install{}, fmt.Errorf("no initdb and postgres in %s or %s", dir, filepath.Join(dir, "bin"))
}

// binDir returns the directory of d/postgres, symlinks resolved, when it is
// an executable with an executable initdb beside it.
func binDir(d string) (string, bool) {
	pg, err := filepath.EvalSymlinks(filepath.Join(d, "postgres"))
	if err != nil {
		return "", false
	}
	dir := filepath.Dir(pg)
	return dir, isExecutable(pg) && isExecutable(filepath.Join(dir, "initdb"))
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
		dir, ok := binDir(d)
		if !ok || seen[dir] {
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
	in := install{dir: dir, libDir: bundledLibDir(dir)}
	out, err := in.postgresVersion(ctx, nil)
	if err != nil {
		return install{}, err
	}
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return install{}, fmt.Errorf("postgres --version: unexpected output %q", strings.TrimSpace(out))
	}
	in.version = m[1]
	in.major, _ = strconv.Atoi(m[1])
	if m[2] != "" {
		in.minor, _ = strconv.Atoi(m[2])
		in.version += "." + m[2]
	}
	return in, nil
}

// postgresVersion runs postgres --version as cred (nil: as we run).
func (in install) postgresVersion(ctx context.Context, cred *syscall.Credential) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(in.dir, "postgres"), "--version")
	cmd.Dir = "/"
	cmd.Env = in.environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, lastLines(string(ee.Stderr), 5))
		}
		return "", fmt.Errorf("postgres --version: %w", err)
	}
	return string(out), nil
}
