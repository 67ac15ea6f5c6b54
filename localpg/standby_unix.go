//go:build unix

package localpg

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// newStandby starts a hot standby of pm streaming through the new
// replication slot slot: pg_basebackup from pm's installation, run as pm's
// user, then a postmaster in a temp dir of its own (with its own watchdog)
// on pm's settings and sc's.
func (pm *postmaster) newStandby(ctx context.Context, slot string, sc standbyConfig) (*postmaster, error) {
	settings := append([][2]string(nil), pm.settings...)
	settings = append(settings,
		[2]string{"hot_standby", "on"},
		[2]string{"hot_standby_feedback", "on"}, // reads on the standby are not cancelled by the primary's vacuum
		[2]string{"recovery_min_apply_delay", strconv.FormatInt(sc.applyDelay.Milliseconds(), 10) + "ms"},
	)
	settings = append(settings, sc.settings...)
	sb := &postmaster{in: pm.in, settings: settings, cred: pm.cred, logger: pm.logger}
	return sb.create(ctx, func(ctx context.Context) error { return sb.basebackup(ctx, pm.port, slot) })
}

// basebackup fills pm.data with a base backup of the server on 127.0.0.1:port
// that streams its WAL as it goes, creates slot there, and writes the
// standby's primary_conninfo, primary_slot_name and standby.signal (-R).
func (pm *postmaster) basebackup(ctx context.Context, port int, slot string) error {
	began := time.Now()
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=%s", port, slot)
	cmd := exec.CommandContext(ctx, filepath.Join(pm.in.dir, "pg_basebackup"),
		"-d", conninfo, "-D", pm.data, "-X", "stream", "-c", "fast", "-C", "-S", slot, "-R", "--no-sync")
	cmd.Dir = pm.root
	cmd.Env = pm.in.environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pm.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_basebackup: %w\n%s", err, lastLines(string(out), 20))
	}
	pm.logger.Debug("localpg: pg_basebackup", "dir", pm.data, "slot", slot, "took", time.Since(began))
	return nil
}
