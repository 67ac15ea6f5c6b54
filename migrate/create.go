package migrate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/pressly/goose/v3"
)

// GoPackageDir is the subdirectory of a migrations directory that holds
// its Go migrations as a package of their own (db/migrations/gomigrations),
// registered for cmd/migrate to compile in; see [Create].
const GoPackageDir = "gomigrations"

// Create writes a new migration into dir, numbered one past the highest
// version there and in dir/[GoPackageDir] (00012_add_invoices.sql after
// 00011_…), and returns its path. name becomes snake_case ("Add invoices" →
// add_invoices); kind is "sql" (default when empty) or "go". The file has
// an Up and a Down section to fill in. It never overwrites a file.
//
// A Go migration goes into dir/gomigrations when that package exists (it
// registers itself there, and cmd/migrate runs it); else into dir, as a
// variable to pass to [WithGoMigrations].
//
// New files follow the project's [Numbering] (see [WithNumbering]; other
// options are ignored): one past the highest version, or, numbered by
// timestamps, the current UTC time (YYYYMMDDhhmmss, as goose create does).
func Create(dir, name, kind string, opts ...Option) (string, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return "", fmt.Errorf("create migration: %w", err)
	}
	if kind == "" {
		kind = "sql"
	}
	tmpl, ok := templates[kind]
	if !ok {
		return "", fmt.Errorf("create migration: kind %q: want \"sql\" or \"go\"", kind)
	}
	snake := snakeCase(name)
	if snake == "" {
		return "", fmt.Errorf("create migration: name %q needs at least one letter or digit", name)
	}
	files, goPkg, err := numberedFiles(dir)
	if err != nil {
		return "", fmt.Errorf("create migration: %w", err)
	}
	into := dir
	if goPkg && kind == "go" {
		into, tmpl = filepath.Join(dir, GoPackageDir), registeredGo
	}
	var last int64
	names := make([]string, len(files))
	for i, f := range files {
		last = max(last, f.version)
		names[i] = f.name
	}
	numbering := cfg.numbering
	if numbering == NumberingAuto {
		numbering = majority(names)
	}
	version := last + 1
	format := "%05d_%s.%s"
	if numbering == NumberingTimestamp {
		now, _ := strconv.ParseInt(time.Now().UTC().Format(timestampFormat), 10, 64) // digits only
		version, format = max(now, version), "%d_%s.%s"
	}
	file := filepath.Join(into, fmt.Sprintf(format, version, snake, kind))
	var b strings.Builder
	err = tmpl.Execute(&b, map[string]any{
		"Version": version,
		"File":    filepath.Base(file),
		"Ident":   fmt.Sprintf("Migration%05d%s", version, camelCase(snake)),
	})
	if err != nil {
		return "", fmt.Errorf("create migration: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("create migration: %w", err)
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(file)
		return "", fmt.Errorf("create migration: %w", err)
	}
	return file, nil
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

func snakeCase(s string) string {
	// Split camelCase words first: "AddInvoices" → "add_invoices".
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if i > 0 && r >= 'A' && r <= 'Z' && (rs[i-1] >= 'a' && rs[i-1] <= 'z' || rs[i-1] >= '0' && rs[i-1] <= '9') {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.Trim(nonWord.ReplaceAllString(strings.ToLower(b.String()), "_"), "_")
}

func camelCase(snake string) string {
	var b strings.Builder
	for _, w := range strings.Split(snake, "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

var templates = map[string]*template.Template{
	"sql": template.Must(template.New("sql").Parse(`-- +goose Up
-- {{.File}}: write the change here. goose runs this file in one transaction;
-- put function bodies between StatementBegin and StatementEnd annotations.
SELECT 'up {{.File}}';

-- +goose Down
-- Undo exactly what Up did, so that down restores the previous schema.
SELECT 'down {{.File}}';
`)),
	"go": template.Must(template.New("go").Parse(`package migrations

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

// {{.Ident}} is migration {{.File}}; pass it to migrate.WithGoMigrations.
var {{.Ident}} = goose.NewGoMigration({{.Version}},
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		// Up: write the change here.
		return nil
	}},
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		// Down: undo exactly what Up did.
		return nil
	}},
)
`)),
}

// registeredGo is a Go migration in a migrations directory's Go package
// (GoPackageDir), registering itself for cmd/migrate.
var registeredGo = template.Must(template.New("go").Parse(`package gomigrations

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

// Migration {{.File}}: Up and Down each run in one transaction, like a SQL
// migration; they must not commit or roll back tx themselves.
var _ = register(goose.NewGoMigration({{.Version}},
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		// Up: write the change here.
		return nil
	}},
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		// Down: undo exactly what Up did.
		return nil
	}},
))
`))

// migrationFile is a numbered migration file, *.sql or *.go.
type migrationFile struct {
	dir, name string
	version   int64
}

// numberedFiles lists the numbered migrations of dir and of
// dir/[GoPackageDir] (skipping *_test.go), and reports whether that Go
// package exists.
func numberedFiles(dir string) (files []migrationFile, goPkg bool, err error) {
	for _, d := range []string{dir, filepath.Join(dir, GoPackageDir)} {
		entries, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) && d != dir {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("read directory (set -dir to the migrations directory): %w", err)
		}
		goPkg = d != dir
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || ext != ".sql" && ext != ".go" || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			if v, err := goose.NumericComponent(e.Name()); err == nil {
				files = append(files, migrationFile{d, e.Name(), v})
			}
		}
	}
	return files, goPkg, nil
}
