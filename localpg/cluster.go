//go:build unix

package localpg

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// initdbArgs are the initdb flags after -D; part of the cache key.
var initdbArgs = []string{"-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"}

// startBinaries starts a postmaster from local binaries, or returns a reason
// when none are installed.
func startBinaries(ctx context.Context, cfg *config) (*Server, string, error) {
	var in install
	if cfg.binDir != "" {
		var err error
		if in, err = installAt(ctx, cfg.binDir); err != nil {
			return nil, "", fmt.Errorf("localpg: %s: %w", cfg.binDirOrigin(), err)
		}
	} else {
		var ok bool
		if in, ok = findInstall(ctx, cfg.binDirs); !ok {
			return nil, "no initdb and postgres on PATH or under " + strings.Join(cfg.binDirs, ", "), nil
		}
	}
	sweep(cfg.logger)
	cred, err := runAsCredential()
	if err != nil {
		return nil, "", err
	}
	if cred != nil {
		if _, err := in.postgresVersion(ctx, cred); err != nil {
			return nil, "", fmt.Errorf("localpg: PostgreSQL %s in %s: user postgres, who runs the server "+
				"when this process is root, cannot run it (every directory above it must be searchable "+
				"by postgres, e.g. not under /root): %w", in.version, in.dir, err)
		}
	}
	pm, err := newPostmaster(ctx, cfg, in, cred)
	if err != nil {
		return nil, "", fmt.Errorf("localpg: PostgreSQL %s from %s: %w", in.version, in.dir, err)
	}
	s := &Server{source: SourceBinaries, url: pm.url(), pm: pm}
	if cfg.signals {
		track(s)
	}
	return s, "", nil
}

// runAsCredential returns the user to run initdb and postgres as: nil (the
// current one) unless we are root, which PostgreSQL refuses; then "postgres".
func runAsCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("localpg: PostgreSQL refuses to run as root and there is no postgres user "+
			"to run it as (create one, e.g. useradd --system postgres, or run as another user): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("localpg: parse ids of user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepareData fills pm.data with a fresh cluster: a copy of the cached one
// for this installation, else initdb's output, which then fills the cache.
// A cached cluster is named by the server's version and a hash of the
// installation's directory and initdb's flags ("17.10-1a2b3c4d"), so that
// clusters of different versions or builds never mix, and its PG_VERSION is
// checked before use. The cache is guarded by a file lock, so parallel
// processes run initdb once.
func (pm *postmaster) prepareData(ctx context.Context, cacheDir string) error {
	if cacheDir == "" {
		return pm.initdb(ctx)
	}
	h := sha256.Sum256([]byte(strings.Join(append([]string{"v1", pm.in.dir}, initdbArgs...), "\x00")))
	cached := filepath.Join(cacheDir, fmt.Sprintf("%s-%x", pm.in.version, h[:4]))
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		pm.logger.Debug("localpg: cluster cache unusable", "dir", cacheDir, "err", err)
		return pm.initdb(ctx)
	}
	unlock, err := lockFile(ctx, cached+".lock")
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("lock the cluster cache: %w", err)
		}
		pm.logger.Debug("localpg: cluster cache unusable", "dir", cacheDir, "err", err)
		return pm.initdb(ctx)
	}
	defer unlock()
	if pm.in.madeCluster(cached) {
		began := time.Now()
		if err := copyTree(cached, pm.data, pm.cred); err != nil {
			return fmt.Errorf("copy the cached cluster %s: %w", cached, err)
		}
		pm.logger.Debug("localpg: copied cached cluster", "from", cached, "took", time.Since(began))
		return nil
	}
	if err := pm.initdb(ctx); err != nil {
		return err
	}
	if err := fillCache(pm.data, cached); err != nil {
		pm.logger.Debug("localpg: could not fill the cluster cache", "dir", cached, "err", err)
	}
	return nil
}

// madeCluster reports whether data holds a whole cluster of in's major
// version (its PG_VERSION is written last by initdb, and names the major).
// The cache key already names the version; this guards against a cluster of
// another major under it, which postgres would refuse to start.
func (in install) madeCluster(data string) bool {
	b, err := os.ReadFile(filepath.Join(data, "PG_VERSION"))
	if err != nil {
		return false
	}
	v := strings.TrimSpace(string(b))
	return v != "" && (in.version == v || strings.HasPrefix(in.version, v+"."))
}

// fillCache copies the fresh cluster src to cached, atomically: a reader sees
// all of it or nothing.
func fillCache(src, cached string) error {
	tmp := cached + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.CopyFS(tmp, os.DirFS(src)); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.RemoveAll(cached); err != nil {
		return err
	}
	return os.Rename(tmp, cached)
}

// initdb initialises pm.data.
func (pm *postmaster) initdb(ctx context.Context) error {
	began := time.Now()
	if err := pm.runTool(ctx, "initdb", append([]string{"-D", pm.data}, initdbArgs...)...); err != nil {
		return err
	}
	pm.logger.Debug("localpg: initdb", "dir", pm.data, "took", time.Since(began))
	return nil
}

// runTool runs tool of pm's installation with args as pm's user, in pm.root
// with the installation's environment; its error ends with the last lines of
// the tool's output.
func (pm *postmaster) runTool(ctx context.Context, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(pm.in.dir, tool), args...)
	cmd.Dir = pm.root
	cmd.Env = pm.in.environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pm.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", tool, err, lastLines(string(out), 20))
	}
	return nil
}

// copyTree copies directory src to dst (which must not exist), owned by cred
// (nil: the current user), with dst itself private as PostgreSQL requires.
func copyTree(src, dst string, cred *syscall.Credential) error {
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return err
	}
	if err := os.Chmod(dst, 0o700); err != nil {
		return err
	}
	if cred == nil {
		return nil
	}
	return filepath.WalkDir(dst, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(cred.Uid), int(cred.Gid))
	})
}

// lockFile takes an exclusive flock on path, polling until ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
