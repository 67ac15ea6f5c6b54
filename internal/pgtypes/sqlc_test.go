package pgtypes_test

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSQLCOverridesCoverEverySpelling generates code for testdata/sqlc (every
// spelling of each mapped type, NOT NULL and nullable) with the go options
// and overrides of the dbgen package in the repository's sqlc.yaml, and
// checks the Go type of every column and parameter: one per database type,
// no pgtype wrapper.
func TestSQLCOverridesCoverEverySpelling(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs sqlc")
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(root, "sqlc.yaml"))
	require.NoError(t, err)
	// sqlc reads paths relative to its configuration file: copy the project.
	dir := t.TempDir()
	for _, name := range []string{"schema.sql", "queries.sql"} {
		src, err := os.ReadFile(filepath.Join("testdata", "sqlc", name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), src, 0o600))
	}
	cfg := "version: \"2\"\nsql:\n  - engine: postgresql\n" +
		"    schema: schema.sql\n    queries: queries.sql\n" +
		"    analyzer:\n      database: false\n" +
		strings.Replace(dbgenGen(t, string(raw)), "out: dbgen\n", "out: out\n", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sqlc.yaml"), []byte(cfg), 0o600))
	out := filepath.Join(dir, "out")

	cmd := exec.CommandContext(t.Context(), "go", "tool", "-modfile=tools/go.mod", "sqlc", "generate", "-f", filepath.Join(dir, "sqlc.yaml"))
	cmd.Dir = root
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "sqlc generate:\n%s", msg)

	fields := structFields(t, out, "Spelling", "SpellingFindParams")
	want := map[string]string{
		"Spelling.ID":  "int64",
		"Spelling.Tz1": "time.Time", "Spelling.Tz2": "time.Time", "Spelling.Tz3": "time.Time",
		"Spelling.Tz4": "time.Time", "Spelling.Tz5": "time.Time",
		"Spelling.Tz1n": "*time.Time", "Spelling.Tz2n": "*time.Time", "Spelling.Tz3n": "*time.Time", "Spelling.Tz4n": "*time.Time",
		"Spelling.Ts1": "time.Time", "Spelling.Ts2": "time.Time", "Spelling.Ts3": "time.Time", "Spelling.Ts4": "time.Time",
		"Spelling.Ts1n": "*time.Time", "Spelling.Ts2n": "*time.Time", "Spelling.Ts3n": "*time.Time",
		"Spelling.D1": "time.Time", "Spelling.D2": "time.Time", "Spelling.D1n": "*time.Time", "Spelling.D2n": "*time.Time",
		"Spelling.J1": "json.RawMessage", "Spelling.J2": "json.RawMessage", "Spelling.J1n": "json.RawMessage", "Spelling.J2n": "json.RawMessage",
		"Spelling.Jb1": "json.RawMessage", "Spelling.Jb2": "json.RawMessage", "Spelling.Jb1n": "json.RawMessage", "Spelling.Jb2n": "json.RawMessage",
		"Spelling.N1": "decimal.Decimal", "Spelling.N2": "decimal.Decimal", "Spelling.N3": "decimal.Decimal",
		"Spelling.N4": "decimal.Decimal", "Spelling.N5": "decimal.Decimal",
		"Spelling.N1n": "*decimal.Decimal", "Spelling.N2n": "*decimal.Decimal", "Spelling.N3n": "*decimal.Decimal", "Spelling.N4n": "*decimal.Decimal",
		"Spelling.U1": "uuid.UUID", "Spelling.U2": "uuid.UUID", "Spelling.U1n": "*uuid.UUID", "Spelling.U2n": "*uuid.UUID",
		"Spelling.Tza": "[]time.Time", "Spelling.Tzan": "[]time.Time", "Spelling.Ua": "[]uuid.UUID",
		"Spelling.St": "Status", "Spelling.Stn": "*Status", "Spelling.Sta": "[]Status",
		"SpellingFindParams.A": "time.Time", "SpellingFindParams.B": "time.Time", "SpellingFindParams.C": "time.Time",
		"SpellingFindParams.D": "time.Time", "SpellingFindParams.E": "json.RawMessage", "SpellingFindParams.F": "decimal.Decimal",
		"SpellingFindParams.G": "uuid.UUID", "SpellingFindParams.H": "*time.Time", "SpellingFindParams.I": "[]Status",
	}
	require.Equal(t, want, fields)

	files, err := filepath.Glob(filepath.Join(out, "*.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NotContains(t, string(src), "pgtype.", filepath.Base(f))
	}
}

// dbgenGen returns the gen: block of the sqlc.yaml entry that generates
// package dbgen, as written (indented four spaces, ending in a newline).
func dbgenGen(t *testing.T, cfg string) string {
	t.Helper()
	lines := strings.SplitAfter(cfg, "\n")
	for i, l := range lines {
		if l != "    gen:\n" {
			continue
		}
		var b strings.Builder
		b.WriteString(l)
		for _, l := range lines[i+1:] {
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "      ") {
				break
			}
			b.WriteString(l)
		}
		if strings.Contains(b.String(), "        package: dbgen\n") {
			return b.String()
		}
	}
	t.Fatal("sqlc.yaml: no gen block with package: dbgen")
	return ""
}

// structFields maps "Struct.Field" to the field's type, for the named structs
// of the Go files in dir.
func structFields(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	got := map[string]string{}
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err)
		ast.Inspect(file, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok || !contains(names, ts.Name.Name) {
				return true
			}
			for _, fld := range st.Fields.List {
				var typ strings.Builder
				require.NoError(t, printer.Fprint(&typ, fset, fld.Type))
				for _, name := range fld.Names {
					got[ts.Name.Name+"."+name.Name] = typ.String()
				}
			}
			return false
		})
	}
	return got
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
