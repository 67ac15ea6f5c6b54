package migrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pressly/goose/v3"

	"github.com/cortexerp/datalayer/internal/goosesplit"
)

// Validate checks the migrations at the root of fsys without a database:
// every *.sql and *.go file is named NNNNN_name.ext, numbered by the
// project's scheme ([Numbering]: sequential versions 1, 2, 3 … without gaps,
// or goose's timestamps YYYYMMDDhhmmss_name, unique), without duplicates;
// every SQL file parses with goose's own parser (annotations,
// StatementBegin/End, semicolons), writes its annotations as goose reads them
// (-- +goose Down: not -- +GOOSE Down, which goose takes for a comment) and
// has a non-empty Down section, unless it says why not in a line
// "-- migrate:no-down REASON" (a migration that cannot be undone). It
// reports every problem found, each naming its file (and the line, where it
// can tell).
//
// Go migrations given with [WithGoMigrations] are numbered together with
// the files: a version used by both is an error, and the sequence runs
// through both. [WithNumbering] pins the scheme; options that concern
// running (locks, drift) are ignored.
func Validate(fsys fs.FS, opts ...Option) error {
	if fsys == nil {
		return errors.New("validate: fsys must not be nil")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	files, err := migrationFiles(fsys)
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	if len(files) == 0 {
		return errors.New("validate: no migration files (00001_name.sql …) at the root of the migrations directory")
	}
	var problems []error
	var entries []numberedEntry
	seen := map[int64]string{}
	var sqlFiles []numberedEntry // the SQL files goose would run, each once
	for _, f := range files {
		v, err := goose.NumericComponent(f)
		if err != nil || nameOf(f) == "" {
			problems = append(problems, fmt.Errorf("%s: name must be NNNNN_name%s (goose would skip it)", f, path.Ext(f)))
			continue
		}
		if prev, dup := seen[v]; dup {
			problems = append(problems, fmt.Errorf("%s: version %d already used by %s", f, v, prev))
			continue
		}
		seen[v] = f
		entries = append(entries, numberedEntry{v, f})
		if path.Ext(f) == ".sql" { // a Go file: only its name can be checked without building it
			sqlFiles = append(sqlFiles, numberedEntry{v, f})
		}
	}
	for _, gm := range cfg.goMigrations {
		file := baseName(gm.Source)
		if file == "" {
			file = fmt.Sprintf("Go migration %d", gm.Version)
		}
		if prev, dup := seen[gm.Version]; dup {
			if path.Ext(prev) == ".go" && (gm.Source == "" || prev == file) {
				continue // this migration's own file, in fsys (goose's layout)
			}
			problems = append(problems, fmt.Errorf("%s: version %d already used by %s", file, gm.Version, prev))
			continue
		}
		seen[gm.Version] = file
		entries = append(entries, numberedEntry{gm.Version, file})
	}
	slices.SortFunc(entries, func(a, b numberedEntry) int { return cmp.Compare(a.version, b.version) })
	problems = append(problems, checkNumbering(cfg.numbering, entries)...)
	slices.SortFunc(sqlFiles, func(a, b numberedEntry) int { return cmp.Compare(a.version, b.version) })
	problems = append(problems, parseAll(fsys, sqlFiles)...)
	if len(problems) > 0 {
		return fmt.Errorf("validate: %w", errors.Join(problems...))
	}
	return nil
}

// parseAll splits each SQL migration up and down with goose's own parser
// (goosesplit): goose decides, exactly as it will when migrating for real.
func parseAll(fsys fs.FS, files []numberedEntry) []error {
	ctx := context.Background()
	var problems []error
	for _, f := range files {
		file := f.file
		var noDown noDownMark
		if data, err := fs.ReadFile(fsys, file); err == nil {
			if err := checkAnnotations(file, data); err != nil {
				problems = append(problems, err)
				continue
			}
			noDown = findNoDown(data)
		}
		if noDown.line > 0 && noDown.reason == "" {
			problems = append(problems, fmt.Errorf("%s:%d: say why Down is empty after %s (%s the dropped rows cannot come back)", file, noDown.line, noDownAnnotation, noDownAnnotation))
			continue
		}
		if _, err := goosesplit.File(ctx, fsys, file, true); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", file, goosesplit.Cause(err, file)))
			continue
		}
		down, err := goosesplit.File(ctx, fsys, file, false)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", file, goosesplit.Cause(err, file)))
			continue
		}
		switch {
		case len(down) == 0 && noDown.line == 0:
			problems = append(problems, fmt.Errorf("%s: Down section is empty: write the statements that undo Up after -- +goose Down, "+
				"or say why it cannot be undone in a line %s REASON", file, noDownAnnotation))
		case len(down) > 0 && noDown.line > 0:
			problems = append(problems, fmt.Errorf("%s:%d: %s, but the Down section is not empty: remove one of them", file, noDown.line, noDownAnnotation))
		}
	}
	return problems
}

// noDownAnnotation, on a line of its own followed by a reason, accepts an
// empty Down section: the migration cannot be undone (data dropped, a
// one-way backfill), and says why.
const noDownAnnotation = "-- migrate:no-down"

// noDownMark is where a file says it has no Down section, and why.
type noDownMark struct {
	line   int // 1-based; 0 when the file has no such line
	reason string
}

// findNoDown finds the first "-- migrate:no-down REASON" line of a file.
func findNoDown(data []byte) noDownMark {
	for i, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), noDownAnnotation)
		if ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return noDownMark{line: i + 1, reason: strings.TrimSpace(rest)}
		}
	}
	return noDownMark{}
}

// annotations are goose's SQL annotations, as written in a migration.
var annotations = []string{"Up", "Down", "StatementBegin", "StatementEnd", "NO TRANSACTION", "ENVSUB ON", "ENVSUB OFF"}

// checkAnnotations finds, with its line, a comment of a SQL migration that
// looks like an annotation but that goose reads otherwise: in another case
// (-- +Goose Down) goose takes it for a comment, and it reads
// "-- +goose Do--wn" or "-- -- +goose Down" as Down. Either would silently
// move statements between Up and Down. What goose itself rejects is left to
// its parser.
func checkAnnotations(file string, data []byte) error {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r") // as goose's line scanner does
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(trimmed, "--") || !strings.Contains(strings.ToLower(trimmed), "+goose") {
			continue
		}
		if !strings.Contains(line, "+goose") {
			return fmt.Errorf("%s:%d: %q looks like a goose annotation, but goose reads it as a comment: write +goose in lower case (-- +goose Down)", file, i+1, trimmed)
		}
		read, ok := gooseAnnotation(line)
		if !ok {
			continue // goose reports it
		}
		if name, ok := annotationName(line); !ok || !strings.EqualFold(name, read) {
			return fmt.Errorf("%s:%d: goose reads %q as -- +goose %s: write that", file, i+1, trimmed, read)
		}
	}
	return nil
}

// gooseAnnotation is the annotation goose's parser reads from line, if it
// reads one (it drops every "--" and the first "+goose", then compares the
// rest in any case).
func gooseAnnotation(line string) (string, bool) {
	if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
		return "", false
	}
	cmd := strings.Replace(strings.ReplaceAll(line, "--", ""), "+goose", "", 1)
	if strings.Contains(cmd, "+goose") {
		return "", false
	}
	cmd = strings.TrimSpace(cmd)
	for _, a := range annotations {
		if strings.EqualFold(a, cmd) {
			return a, true
		}
	}
	return "", false
}

// annotationName returns Up for a line written "-- +goose Up": "--", then
// "+goose" (spaces or tabs before it), then a space and the name.
func annotationName(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "--")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " \t"), "+goose")
	if r, _ := utf8.DecodeRuneInString(rest); !ok || !unicode.IsSpace(r) {
		return "", false
	}
	return strings.TrimSpace(rest), true
}
