//go:build unix

package localpg

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// sweep removes the temp dirs of localpg servers whose owning process died
// without its watchdog cleaning up (the watchdog was killed too, say): the
// owner's flock on localpg.lock is gone.
func sweep(logger *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range dirs {
		if !orphaned(dir) {
			continue
		}
		killStalePostmaster(filepath.Join(dir, "data"))
		err := os.RemoveAll(dir)
		logger.Debug("localpg: removed the dir of a dead process", "dir", dir, "err", err)
	}
}

// orphaned reports whether dir's owner is gone. A dir younger than a few
// seconds may still be taking its lock and is left alone.
func orphaned(dir string) bool {
	f, err := os.Open(filepath.Join(dir, lockName))
	if err != nil {
		fi, err := os.Stat(dir)
		return err == nil && fi.IsDir() && time.Since(fi.ModTime()) > time.Minute
	}
	defer f.Close() // releases the lock taken below
	if fi, err := f.Stat(); err != nil || time.Since(fi.ModTime()) < 5*time.Second {
		return false
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

// killStalePostmaster stops the postmaster of dataDir if it still runs, when
// /proc confirms that the pid in postmaster.pid serves dataDir.
func killStalePostmaster(dataDir string) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(string(line))
	if err != nil || pid <= 0 {
		return
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || !bytes.Contains(cmdline, []byte(dataDir)) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	for range 50 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
