//go:build migratelint

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLintCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	write("00001_orders.sql", "-- +goose Up\nCREATE TABLE orders (id bigint PRIMARY KEY, total numeric);\n-- +goose Down\nDROP TABLE orders;\n")
	lintCmd := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, stdout, stderr := lintCmd("-dir", dir, "lint")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "1 migration linted: no findings\n", stdout)

	write("00002_total_idx.sql", "-- +goose Up\nCREATE INDEX orders_total_idx ON orders (total);\n-- +goose Down\nDROP INDEX orders_total_idx;\n")
	code, stdout, stderr = lintCmd("-dir", dir, "lint")
	require.Equal(t, exitFail, code)
	require.Equal(t, filepath.ToSlash(dir)+"/00002_total_idx.sql:2: create-index-concurrently: CREATE INDEX on orders, a table this migration did not create, "+
		"blocks every write to it until the index is built\n"+
		"\tfix: CREATE INDEX CONCURRENTLY IF NOT EXISTS, alone in a migration marked -- +goose NO TRANSACTION\n", stdout)
	require.Equal(t, "migrate: lint: 1 finding in 1 of 2 migrations (silence one with -- lint:ignore RULE REASON above the statement, when it is safe)\n", stderr)

	code, _, stderr = lintCmd("lint", "extra")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, `lint: unexpected argument "extra"`)
}

// TestLintCommandOnTheEmbeddedMigrations lints what the binary carries.
func TestLintCommandOnTheEmbeddedMigrations(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"lint"}, func(string) string { return "" }, &stdout, &stderr)
	require.Equal(t, exitOK, code, stdout.String()+stderr.String())
	require.Regexp(t, `^\d+ migrations? linted: no findings\n$`, stdout.String())
}
