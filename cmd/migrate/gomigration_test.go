package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGoMigrationCreatedBuiltAndApplied is a user's day with a Go
// migration: create writes it into db/migrations/gomigrations of a copy of
// the module, the user fills it in, cmd/migrate is built from that copy,
// and up runs it after the SQL migrations; status and validate list it
// with them, and down undoes it.
func TestGoMigrationCreatedBuiltAndApplied(t *testing.T) {
	t.Parallel()
	root := copyModule(t)

	out := runIn(t, root, binary, "create", "backfill notes", "go")
	n := embeddedCount(t) + 1
	file := filepath.Join("db", "migrations", "gomigrations", padded(n)+"_backfill_notes.go")
	require.Equal(t, "created "+file+"\n", out)
	src, err := os.ReadFile(filepath.Join(root, file))
	require.NoError(t, err)
	code := strings.Replace(string(src), "// Up: write the change here.\n\t\treturn nil",
		`_, err := tx.ExecContext(ctx, "CREATE TABLE made_in_go AS SELECT 42 AS answer")
		return err`, 1)
	code = strings.Replace(code, "// Down: undo exactly what Up did.\n\t\treturn nil",
		`_, err := tx.ExecContext(ctx, "DROP TABLE made_in_go")
		return err`, 1)
	require.NotEqual(t, string(src), code)
	require.NoError(t, os.WriteFile(filepath.Join(root, file), []byte(code), 0o644))

	built := filepath.Join(t.TempDir(), "migrate")
	runIn(t, root, "go", "build", "-o", built, "./cmd/migrate")

	url := emptyDB(t)
	withBinary := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, built, args...)
		cmd.Dir = root
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + url}
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "migrate %v: %s", args, b)
		return string(b)
	}
	require.Equal(t, "migrations are valid\n", withBinary("validate"))
	out = withBinary("up")
	require.Regexp(t, `(?m)^up   `+padded(n-1)+`_\w+\.sql .*\nup   `+padded(n)+`_backfill_notes\.go \(.+\)\ndatabase at version `+strconv.FormatInt(n, 10)+`\n\z`, out)
	d := sqlDB(t, url)
	var answer int
	require.NoError(t, d.QueryRowContext(t.Context(), "SELECT answer FROM made_in_go").Scan(&answer))
	require.Equal(t, 42, answer)

	out = withBinary("status")
	require.Regexp(t, `(?m)^`+padded(n-1)+`\s+`+padded(n-1)+`_\w+\.sql\s+\d{4}-`, out)
	require.Regexp(t, `(?m)^`+padded(n)+`\s+`+padded(n)+`_backfill_notes\.go\s+\d{4}-`, out)

	require.Regexp(t, `^down `+padded(n)+`_backfill_notes\.go `, withBinary("down"))
	require.False(t, tableExists(t, d, "made_in_go"))
	require.Len(t, appliedVersions(t, d), int(n-1))

	// A SQL migration created next takes the version after the Go one.
	out = runIn(t, root, built, "create", "after")
	require.Equal(t, "created "+filepath.Join("db", "migrations", padded(n+1)+"_after.sql")+"\n", out)
}

// copyModule copies what cmd/migrate is built from (the module's packages
// it imports, their embedded files, go.mod and go.sum) into a temp dir.
func copyModule(t *testing.T) string {
	t.Helper()
	modRoot := strings.TrimSpace(runIn(t, ".", "go", "list", "-m", "-f", "{{.Dir}}"))
	list := runIn(t, ".", "go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`, ".")
	root := t.TempDir()
	copyFile := func(rel string) {
		b, err := os.ReadFile(filepath.Join(modRoot, rel))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, rel), b, 0o644))
	}
	copyFile("go.mod")
	copyFile("go.sum")
	for line := range strings.SplitSeq(strings.TrimSpace(list), "\n") {
		fields := strings.Fields(line)
		rel, err := filepath.Rel(modRoot, fields[0])
		require.NoError(t, err)
		for _, f := range fields[1:] {
			copyFile(filepath.Join(rel, f))
		}
	}
	return root
}

// runIn runs a command in dir and returns its output, failing the test on error.
func runIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // go build of the copy, on a loaded machine
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	var stderr string
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "%s %v: %s%s", name, args, b, stderr)
	return string(b)
}

func padded(v int64) string { return fmt.Sprintf("%05d", v) }
