package migrate

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
)

// ChecksumTable is the table, next to goose's goose_db_version, where the
// Migrator records the SHA-256 of each migration file it applied. It is
// created on first use, in the locked migration session. With
// [WithVersionTable] it is that table's name + "_checksums".
const ChecksumTable = goose.DefaultTablename + checksumSuffix

const checksumSuffix = "_checksums"

// ErrDrift reports that a migration file changed after it was applied. The
// error is a *[DriftError] naming each file and both checksums.
var ErrDrift = errors.New("applied migration changed")

// ErrMissing reports migrations older than the database's current version
// that were never applied (a branch merged late). The error names each file;
// [WithAllowMissing] applies them.
var ErrMissing = errors.New("missing migrations")

// Drift is one applied migration whose file no longer matches the checksum
// recorded when it was applied.
type Drift struct {
	Version  int64
	File     string
	Recorded string // hex SHA-256 recorded when applied
	Current  string // hex SHA-256 of the file now
}

// DriftError is [ErrDrift] with the files that changed.
type DriftError struct {
	Drifts []Drift
}

func (e *DriftError) Error() string {
	parts := make([]string, 0, len(e.Drifts))
	for _, d := range e.Drifts {
		parts = append(parts, fmt.Sprintf("%s changed since it was applied (recorded sha256 %s, file now %s)", d.File, d.Recorded, d.Current))
	}
	return fmt.Sprintf("%v: %s: restore the file, or accept its new text (WithAcceptDrift, -accept-drift)",
		ErrDrift, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrDrift) true.
func (e *DriftError) Is(target error) bool { return target == ErrDrift }

// missingError is ErrMissing with the files.
type missingError struct {
	files   []string
	current int64
}

func (e *missingError) Error() string {
	return fmt.Sprintf("%v: %s not applied but older than the database version %d (a branch merged late?): "+
		"apply them out of order (WithAllowMissing, -allow-missing), or renumber them after %d",
		ErrMissing, strings.Join(e.files, ", "), e.current, e.current)
}

func (e *missingError) Is(target error) bool { return target == ErrMissing }

// querier is what *sql.Conn and *sql.DB share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ querier = (*sql.Conn)(nil)
	_ querier = (*sql.DB)(nil)
)

// sessionHooks run inside the migration lock: afterLock right after it is
// taken, beforeUnlock right before it is released. A Migrator arms them for
// one operation (arm) and disarms them after; while disarmed (Status, or an
// operation goose runs without the lock) they do nothing. Safe for
// concurrent use; goose runs one locked operation at a time per Provider.
type sessionHooks struct {
	mu  sync.Mutex
	run *checksumRun // nil: disarmed
}

func (h *sessionHooks) arm(r *checksumRun) {
	h.mu.Lock()
	h.run = r
	h.mu.Unlock()
}

func (h *sessionHooks) current() *checksumRun {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.run
}

func (h *sessionHooks) afterLock(ctx context.Context, q querier) error {
	if r := h.current(); r != nil {
		return r.before(ctx, q)
	}
	return nil
}

func (h *sessionHooks) beforeUnlock(ctx context.Context, q querier) error {
	if r := h.current(); r != nil {
		return r.after(ctx, q)
	}
	return nil
}

// checksumRun is one operation's checksum bookkeeping.
type checksumRun struct {
	sources      []*goose.Source
	fsys         fs.FS
	check        bool // refuse drift and missing migrations (up, up-by-one, up-to, redo)
	acceptDrift  bool
	allowMissing bool
	versionTable string   // goose's version table
	sumTable     string   // where checksums are kept
	baselined    []string // files recorded for the first time, applied before checksums were kept
}

// fileSum returns the hex SHA-256 of a source's file, or "" for a Go
// migration without a file in fsys.
func fileSum(fsys fs.FS, s *goose.Source) string {
	if s.Path == "" {
		return ""
	}
	data, err := fs.ReadFile(fsys, s.Path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

const createChecksumTable = `CREATE TABLE IF NOT EXISTS %s (
    version    bigint PRIMARY KEY,
    name       text NOT NULL,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// appliedSet reads goose's version table; none when it does not exist yet.
func appliedSet(ctx context.Context, q querier, versionTable string) (map[int64]bool, error) {
	var exists bool
	if err := q.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", versionTable).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	out := map[int64]bool{}
	if !exists {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, "SELECT DISTINCT version_id FROM "+versionTable+" WHERE version_id > 0")
	if err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read applied versions: %w", err)
		}
		out[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	return out, nil
}

// recordedSums reads the checksum table, version → sha256.
func recordedSums(ctx context.Context, q querier, sumTable string) (map[int64]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT version, sha256 FROM "+sumTable)
	if err != nil {
		return nil, fmt.Errorf("read checksums: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := map[int64]string{}
	for rows.Next() {
		var v int64
		var s string
		if err := rows.Scan(&v, &s); err != nil {
			return nil, fmt.Errorf("read checksums: %w", err)
		}
		out[v] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read checksums: %w", err)
	}
	return out, nil
}

const upsertChecksum = `INSERT INTO %s (version, name, sha256) VALUES ($1, $2, $3)
ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, sha256 = EXCLUDED.sha256, applied_at = now()`

// before runs once the lock is held, before any migration: it creates the
// checksum table, refuses drift and missing migrations (when checking),
// records the new text of drifted files (acceptDrift) and the checksums of
// migrations applied before the table existed.
func (r *checksumRun) before(ctx context.Context, q querier) error {
	if _, err := q.ExecContext(ctx, fmt.Sprintf(createChecksumTable, r.sumTable)); err != nil {
		return fmt.Errorf("create %s: %w", r.sumTable, err)
	}
	applied, err := appliedSet(ctx, q, r.versionTable)
	if err != nil {
		return err
	}
	recorded, err := recordedSums(ctx, q, r.sumTable)
	if err != nil {
		return err
	}
	var current int64
	for v := range applied {
		current = max(current, v)
	}
	var drifts []Drift
	var missing []string
	type pending struct {
		s   *goose.Source
		sum string
	}
	var record []pending
	for _, s := range r.sources {
		if !applied[s.Version] {
			if s.Version < current {
				missing = append(missing, sourceLabel(s))
			}
			continue
		}
		sum := fileSum(r.fsys, s)
		if sum == "" {
			continue
		}
		old, ok := recorded[s.Version]
		switch {
		case !ok:
			record = append(record, pending{s, sum})
			r.baselined = append(r.baselined, sourceLabel(s))
		case old != sum:
			drifts = append(drifts, Drift{Version: s.Version, File: sourceLabel(s), Recorded: old, Current: sum})
			if r.acceptDrift {
				record = append(record, pending{s, sum})
			}
		}
	}
	if r.check && len(drifts) > 0 && !r.acceptDrift {
		slices.SortFunc(drifts, func(a, b Drift) int { return cmp.Compare(a.Version, b.Version) })
		return &DriftError{Drifts: drifts}
	}
	if r.check && len(missing) > 0 && !r.allowMissing {
		return &missingError{files: missing, current: current}
	}
	for _, p := range record {
		if _, err := q.ExecContext(ctx, fmt.Sprintf(upsertChecksum, r.sumTable), p.s.Version, baseName(p.s.Path), p.sum); err != nil {
			return fmt.Errorf("record checksum of %s: %w", sourceLabel(p.s), err)
		}
	}
	return nil
}

// after runs before the lock is released, whether the operation succeeded
// or not: it records the checksum of every migration applied now and drops
// the rows of those rolled back.
func (r *checksumRun) after(ctx context.Context, q querier) error {
	applied, err := appliedSet(ctx, q, r.versionTable)
	if err != nil {
		return err
	}
	recorded, err := recordedSums(ctx, q, r.sumTable)
	if err != nil {
		return err
	}
	for v := range recorded {
		if !applied[v] {
			if _, err := q.ExecContext(ctx, "DELETE FROM "+r.sumTable+" WHERE version = $1", v); err != nil {
				return fmt.Errorf("drop checksum of version %d: %w", v, err)
			}
		}
	}
	for _, s := range r.sources {
		if _, ok := recorded[s.Version]; ok || !applied[s.Version] {
			continue
		}
		sum := fileSum(r.fsys, s)
		if sum == "" {
			continue
		}
		if _, err := q.ExecContext(ctx, fmt.Sprintf(upsertChecksum, r.sumTable), s.Version, baseName(s.Path), sum); err != nil {
			return fmt.Errorf("record checksum of %s: %w", sourceLabel(s), err)
		}
	}
	return nil
}

func sourceLabel(s *goose.Source) string {
	if f := baseName(s.Path); f != "" {
		return f
	}
	return fmt.Sprintf("version %d", s.Version)
}

// checksums reads the recorded checksums without the lock; none when the
// table does not exist yet.
func (m *Migrator) checksums(ctx context.Context) (map[int64]string, error) {
	var exists bool
	sumTable := m.cfg.versionTable + checksumSuffix
	if err := m.db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", sumTable).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read checksums: %w", err)
	}
	if !exists {
		return map[int64]string{}, nil
	}
	return recordedSums(ctx, m.db, sumTable)
}
