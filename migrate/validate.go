package migrate

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pressly/goose/v3"
)

// Validate checks the migrations at the root of fsys without a database:
// every *.sql and *.go file is named NNNNN_name.ext, versions run 1, 2, 3 …
// without gaps or duplicates (or, in a project numbered the way goose create
// does by default, every file is named YYYYMMDDhhmmss_name.ext: unique
// timestamps, never mixed with sequential numbers), every SQL file parses with goose's own parser
// (annotations, StatementBegin/End, semicolons), writes its annotations as
// goose reads them (-- +goose Down: not -- +GOOSE Down, which goose takes for
// a comment) and has a non-empty Down section. It reports every problem
// found, each naming its file (and the line, where it can tell).
//
// Go migrations given with [WithGoMigrations] are numbered together with
// the files: a version used by both is an error, and the sequence runs
// through both. Options that concern running (locks, drift) are ignored.
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
	type entry struct {
		version int64
		file    string
	}
	var entries []entry
	seen := map[int64]string{}
	var skip []string // files goose must not see: unparsable, duplicate or Go
	for _, f := range files {
		v, err := goose.NumericComponent(f)
		if err != nil || nameOf(f) == "" {
			problems = append(problems, fmt.Errorf("%s: name must be NNNNN_name%s (goose would skip it)", f, path.Ext(f)))
			skip = append(skip, f)
			continue
		}
		if prev, dup := seen[v]; dup {
			problems = append(problems, fmt.Errorf("%s: version %d already used by %s", f, v, prev))
			skip = append(skip, f)
			continue
		}
		seen[v] = f
		entries = append(entries, entry{v, f})
		if path.Ext(f) == ".go" {
			skip = append(skip, f) // only its name can be checked without building it
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
		entries = append(entries, entry{gm.Version, file})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.version, b.version) })
	var stamped, sequential []entry
	for _, e := range entries {
		if timestamped(e.file) {
			stamped = append(stamped, e)
		} else {
			sequential = append(sequential, e)
		}
	}
	switch {
	case len(sequential) == 0:
		// goose's default numbering (goose create): timestamps, unique
		// and in any order, no gaps to check.
	case len(stamped) > 0:
		// A mix: name the files numbered the way most are not.
		odd, kind, most := stamped, "timestamp", "sequential"
		if len(stamped) > len(sequential) {
			odd, kind, most = sequential, "sequential", "timestamped"
		}
		for _, e := range odd {
			problems = append(problems, fmt.Errorf("%s: %s version %d among %s ones: number every file one way "+
				"(NNNNN_name sequential, or goose's timestamps YYYYMMDDhhmmss_name)", e.file, kind, e.version, most))
		}
	default:
		for i, e := range entries {
			if want := int64(i + 1); e.version != want {
				problems = append(problems, fmt.Errorf("%s: version %d out of sequence: want %05d (versions run 1, 2, 3 … without gaps)", e.file, e.version, want))
				break
			}
		}
	}
	problems = append(problems, parseAll(fsys, skip)...)
	if len(problems) > 0 {
		return fmt.Errorf("validate: %w", errors.Join(problems...))
	}
	return nil
}

// timestamped reports whether a migration is numbered the way goose create
// does by default: a 14-digit UTC time, 20261201190800_name.sql.
func timestamped(file string) bool {
	num, _, ok := strings.Cut(file, "_")
	if !ok || len(num) != len(timestampFormat) {
		return false
	}
	_, err := time.Parse(timestampFormat, num)
	return err == nil
}

const timestampFormat = "20060102150405"

// parseAll runs each SQL migration up and down through goose against a
// driver that executes nothing: goose's parser decides, exactly as it will
// when migrating for real.
func parseAll(fsys fs.FS, skip []string) []error {
	db := sql.OpenDB(nullConnector{})
	defer func() { _ = db.Close() }() // nullConnector: nothing to release
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithDisableVersioning(true),
		goose.WithExcludeNames(skip),
	)
	if errors.Is(err, goose.ErrNoMigrations) {
		return nil
	}
	if err != nil {
		return []error{err}
	}
	ctx := context.Background()
	var problems []error
	for _, s := range p.ListSources() {
		// An fs.FS path, where a backslash is part of the name (baseName splits on it).
		file := path.Base(s.Path)
		if data, err := fs.ReadFile(fsys, s.Path); err == nil {
			if err := checkAnnotations(file, data); err != nil {
				problems = append(problems, err)
				continue
			}
		}
		if _, err := p.ApplyVersion(ctx, s.Version, true); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", file, parseCause(err, s.Path)))
			continue
		}
		r, err := p.ApplyVersion(ctx, s.Version, false)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", file, parseCause(err, s.Path)))
			continue
		}
		if r.Empty {
			problems = append(problems, fmt.Errorf("%s: Down section is empty: write the statements that undo Up after -- +goose Down", file))
		}
	}
	return problems
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

// parseCause drops goose's "failed to prepare migration …: failed to parse
// <file>: " wrappers, whose news the caller already gives.
func parseCause(err error, file string) error {
	for {
		msg := err.Error()
		next := errors.Unwrap(err)
		if next == nil || !strings.HasPrefix(msg, "failed to prepare migration") && !strings.HasPrefix(msg, "failed to parse "+file+":") {
			return err
		}
		err = next
	}
}

// nullConnector is a database/sql driver that accepts every statement and
// runs none of them.
type nullConnector struct{}

func (nullConnector) Connect(context.Context) (driver.Conn, error) { return nullConn{}, nil }
func (nullConnector) Driver() driver.Driver                        { return nullDriver{} }

type nullDriver struct{}

func (nullDriver) Open(string) (driver.Conn, error) { return nullConn{}, nil }

type nullConn struct{}

var (
	_ driver.ExecerContext = nullConn{}
	_ driver.ConnBeginTx   = nullConn{}
	_ driver.Tx            = nullConn{}
	_ driver.Conn          = nullConn{}
	_ driver.Connector     = nullConnector{}
)

func (nullConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("null driver: prepare not supported")
}
func (nullConn) Close() error { return nil }
func (nullConn) Begin() (driver.Tx, error) {
	return nullConn{}, nil
}
func (nullConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	return nullConn{}, nil
}
func (nullConn) Commit() error   { return nil }
func (nullConn) Rollback() error { return nil }
func (nullConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.ResultNoRows, nil
}
