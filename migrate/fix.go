package migrate

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Renamed is one file [Fix] renumbered, both paths in the directory given.
type Renamed struct {
	From, To string
}

// Fix renumbers the timestamped migrations of dir (and of dir/[GoPackageDir])
// sequentially, after the highest sequential version and in timestamp order,
// as goose fix does: 20261201190800_invoices.sql becomes 00012_invoices.sql
// after 00011_…. A Go migration's version is rewritten in its
// goose.NewGoMigration call too. It checks every file before renaming any,
// never overwrites one, and returns the renames in order (none when there
// is nothing to fix).
//
// A database that already applied a timestamped migration records it under
// its old version: there it would run again under the new one. Fix
// migrations before they are applied anywhere that is kept (goose's hybrid
// versioning: timestamps on branches, fix when merging).
func Fix(dir string) ([]Renamed, error) {
	files, _, err := numberedFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("fix: %w", err)
	}
	var last int64
	var stamped []migrationFile
	for _, f := range files {
		if timestamped(f.name) {
			stamped = append(stamped, f)
		} else {
			last = max(last, f.version)
		}
	}
	slices.SortFunc(stamped, func(a, b migrationFile) int { return cmp.Compare(a.version, b.version) })

	type plan struct {
		from, to string
		content  []byte // a Go migration's rewritten source; nil: a plain rename
	}
	var plans []plan
	var problems []error
	for i, f := range stamped {
		version := last + int64(i) + 1
		_, rest, _ := strings.Cut(f.name, "_")
		p := plan{from: filepath.Join(f.dir, f.name), to: filepath.Join(f.dir, fmt.Sprintf("%05d_%s", version, rest))}
		if _, err := os.Lstat(p.to); err == nil {
			problems = append(problems, fmt.Errorf("%s: cannot become %s: that file exists", p.from, filepath.Base(p.to)))
			continue
		}
		if filepath.Ext(f.name) == ".go" {
			src, err := os.ReadFile(p.from)
			if err != nil {
				problems = append(problems, fmt.Errorf("fix: %w", err))
				continue
			}
			call := []byte("NewGoMigration(" + strconv.FormatInt(f.version, 10) + ",")
			if n := bytes.Count(src, call); n != 1 {
				problems = append(problems, fmt.Errorf("%s: has %d calls %s…) where 1 was expected: renumber it by hand", p.from, n, call))
				continue
			}
			p.content = bytes.Replace(src, call, []byte("NewGoMigration("+strconv.FormatInt(version, 10)+","), 1)
		}
		plans = append(plans, p)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("fix: nothing renamed: %w", errors.Join(problems...))
	}
	var done []Renamed
	for _, p := range plans {
		var err error
		if p.content != nil {
			err = writeNew(p.to, p.content)
			if err == nil {
				err = os.Remove(p.from)
			}
		} else {
			err = os.Rename(p.from, p.to)
		}
		if err != nil {
			return done, fmt.Errorf("fix: %s → %s: %w", p.from, filepath.Base(p.to), err)
		}
		done = append(done, Renamed{From: p.from, To: p.to})
	}
	return done, nil
}

// writeNew writes a file that must not exist yet.
func writeNew(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
	}
	return err
}
