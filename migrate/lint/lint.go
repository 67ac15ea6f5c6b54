//go:build migratelint

// Package lint checks goose SQL migrations offline, on PostgreSQL's own
// parser (libpg_query through pg_query_go), before up ever runs them.
//
// Every statement of every migration is split the way goose will split it
// (goose's own parser, through internal/goosesplit) and parsed by PostgreSQL's grammar, so a syntax error or a $$
// body without -- +goose StatementBegin is a finding, with its file and
// line. The statements that parse are checked against the rules of [Rules]:
// operations that lock or rewrite a busy table (an index built without
// CONCURRENTLY, a NOT NULL column without a default, a type change, a
// constraint validated under lock, renames and drops), CONCURRENTLY inside a
// transaction, and NO TRANSACTION migrations that cannot be run again.
//
// A comment on the lines just above a statement, or inside it, silences one
// rule for that statement, with a reason:
//
//	-- lint:ignore drop-column the column has been unused since release 41
//	ALTER TABLE orders DROP COLUMN legacy_code;
//
// An ignore comment without a reason, naming an unknown rule, or silencing
// a rule that did not fire there is a finding of its own (rule ignore).
//
// The package is built only with the migratelint build tag (go build
// -tags migratelint): the parser is C code compiled through cgo, which
// takes minutes the first time, and the rest of the kit builds without it.
package lint

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"

	"github.com/cortexerp/datalayer/internal/goosesplit"
)

// Finding is one problem in one statement of a migration.
type Finding struct {
	File string // the migration file, relative to the linted directory
	Line int    // 1-based line of the statement or of the syntax error
	Rule string // the rule's name, as written in -- lint:ignore
	Risk string // what goes wrong, in one sentence
	Fix  string // the safe pattern
}

// String formats f as "file:line: rule: risk", then the fix on a second,
// indented line.
func (f Finding) String() string {
	s := fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Rule, f.Risk)
	if f.Fix != "" {
		s += "\n\tfix: " + f.Fix
	}
	return s
}

// Report is the outcome of [Check].
type Report struct {
	Files    []string  // the SQL migrations linted, in version order
	Skipped  []string  // Go migrations, which the linter cannot read
	Findings []Finding // in file, then line order
}

// Check lints every SQL migration at the root of fsys (goose's layout:
// 00001_name.sql …), in version order. Findings are returned in the
// [Report]; the error is for what keeps the linter from running at all (no
// migrations, names goose rejects). Check is safe for concurrent use.
func Check(fsys fs.FS) (*Report, error) {
	if fsys == nil {
		return nil, errors.New("lint: fsys must not be nil")
	}
	files, goFiles, err := goosesplit.SQLFiles(fsys)
	if errors.Is(err, goose.ErrNoMigrations) || err == nil && len(files) == 0 {
		return nil, errors.New("lint: no SQL migration files (00001_name.sql …) at the root of the migrations directory")
	}
	if err != nil {
		return nil, fmt.Errorf("lint: %w (migrate validate names each problem)", err)
	}
	rep := &Report{Files: files, Skipped: goFiles}
	l := &linter{checks: map[string]*notNullCheck{}}
	ctx := context.Background()
	for _, file := range files {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("lint: %w", err)
		}
		up, err := goosesplit.File(ctx, fsys, file, true)
		var down []goosesplit.Statement
		if err == nil {
			down, err = goosesplit.File(ctx, fsys, file, false)
		}
		if err != nil {
			rep.Findings = append(rep.Findings, Finding{
				File: file, Line: 1, Rule: RuleSyntax,
				Risk: "goose cannot split this file into statements: " + goosesplit.Cause(err, file).Error(),
				Fix:  "see goose's annotations: -- +goose Up, -- +goose Down, -- +goose StatementBegin/StatementEnd",
			})
			continue
		}
		rep.Findings = append(rep.Findings, l.file(file, string(data), up, down)...)
	}
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return rep, nil
}

// statement is one statement as goose sends it, placed in its file.
type statement struct {
	sql     string
	inTx    bool
	up      bool
	line    int // first line of the statement in the file (1-based)
	above   int // first line of the comment block just above it
	endLine int // last line of the statement
	ignores []*ignore
}

// locate finds each statement in the file's lines: goose keeps a
// statement's lines as they are (trimmed as a whole), so its text is found
// verbatim, in order, from the section it belongs to. A statement that
// cannot be found (ENVSUB rewrote it) takes the line after the previous one.
func locate(lines []string, sents []goosesplit.Statement, up bool, from int) ([]*statement, int) {
	text := strings.Join(lines, "\n")
	// offset of the start of each line
	starts := make([]int, len(lines)+1)
	for i, l := range lines {
		starts[i+1] = starts[i] + len(l) + 1
	}
	lineAt := func(off int) int { // 0-based line holding byte off
		i, _ := slices.BinarySearch(starts, off+1)
		return i - 1
	}
	cursor := starts[min(from, len(lines))]
	var out []*statement
	for _, s := range sents {
		st := &statement{sql: s.SQL, inTx: s.InTx, up: up}
		if off := findAtLineStart(text, s.SQL, cursor); off >= 0 {
			st.line = lineAt(off) + 1
			st.endLine = lineAt(off+len(s.SQL)-1) + 1
			cursor = off + len(s.SQL)
		} else {
			st.line = lineAt(cursor) + 1
			st.endLine = st.line
		}
		st.above = st.line
		for st.above > 1 && isComment(lines[st.above-2]) {
			st.above--
		}
		out = append(out, st)
	}
	return out, lineAt(cursor)
}

// findAtLineStart is the offset of the first occurrence of sql in text at
// or after from that starts a line (blanks before it allowed), or -1: a
// statement's text quoted in a comment above it is not the statement.
func findAtLineStart(text, sql string, from int) int {
	if sql == "" {
		return -1
	}
	for from <= len(text) {
		i := strings.Index(text[from:], sql)
		if i < 0 {
			return -1
		}
		off := from + i
		lineStart := strings.LastIndexByte(text[:off], '\n') + 1
		if strings.TrimSpace(text[lineStart:off]) == "" {
			return off
		}
		from = off + 1
	}
	return -1
}

func isComment(line string) bool { return strings.HasPrefix(strings.TrimSpace(line), "--") }

// downLine is the 0-based line of the -- +goose Down annotation, or -1.
func downLine(lines []string) int {
	for i, l := range lines {
		if !isComment(l) || !strings.Contains(l, "+goose") {
			continue
		}
		cmd := strings.Replace(strings.ReplaceAll(l, "--", ""), "+goose", "", 1)
		if strings.EqualFold(strings.TrimSpace(cmd), "down") {
			return i
		}
	}
	return -1
}

// splitLines splits a file the way goose's line scanner does (a "\r" before
// the "\n" is dropped).
func splitLines(data string) []string {
	lines := strings.Split(data, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// file lints one migration: its Up statements, then its Down statements.
func (l *linter) file(file, data string, up, down []goosesplit.Statement) []Finding {
	lines := splitLines(data)
	ups, end := locate(lines, up, true, 0)
	from := end
	if d := downLine(lines); d >= 0 {
		from = d
	}
	downs, _ := locate(lines, down, false, from)
	all := append(ups, downs...)
	ignores, findings := parseIgnores(file, lines)
	attach(all, ignores)

	state := &fileState{
		file:     file,
		created:  map[string]bool{},
		notValid: map[string]bool{},
		dropped:  map[string]bool{},
	}
	for _, st := range all {
		findings = append(findings, l.statement(state, st)...)
	}
	findings = append(findings, unusedIgnores(file, ignores)...)
	return findings
}

// filter drops the findings an ignore comment of st silences, marking that
// comment used.
func filter(st *statement, found []Finding) []Finding {
	var kept []Finding
	for _, f := range found {
		silenced := false
		for _, ig := range st.ignores {
			if ig.rule == f.Rule && ig.reason != "" && ignorable(f.Rule) {
				ig.used = true
				silenced = true
			}
		}
		if !silenced {
			kept = append(kept, f)
		}
	}
	return kept
}
