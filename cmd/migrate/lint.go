//go:build migratelint

package main

import (
	"context"
	"fmt"
	"path"

	"github.com/cortexerp/datalayer/migrate/lint"
)

// runLint runs the linter on the migrations and prints each finding, its
// file named as it is on disk (-dir, else db/migrations, where the embedded
// ones come from) for editors to open, then a summary. Findings make it fail.
func runLint(_ context.Context, s *session) error {
	fsys, err := s.migrations()
	if err != nil {
		return err
	}
	dir := s.c.dir
	if dir == "" {
		dir = defaultCreateDir
	}
	rep, err := lint.Check(fsys)
	if err != nil {
		return err
	}
	files := map[string]bool{}
	for _, f := range rep.Findings {
		f.File = path.Join(dir, f.File)
		files[f.File] = true
		s.out.printf("%s\n", f)
	}
	for _, g := range rep.Skipped {
		s.out.printf("%s: not linted (a Go migration)\n", path.Join(dir, g))
	}
	if n := len(rep.Findings); n > 0 {
		return fmt.Errorf("lint: %d %s in %d of %d migrations (silence one with -- lint:ignore RULE REASON above the statement, when it is safe)",
			n, plural(n, "finding", "findings"), len(files), len(rep.Files))
	}
	s.out.printf("%d %s linted: no findings\n", len(rep.Files), plural(len(rep.Files), "migration", "migrations"))
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
