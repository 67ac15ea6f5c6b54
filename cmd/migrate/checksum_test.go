package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDriftFlagsAndStatus(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url}
	dir := migrationsDir(t, "00001_a.sql", table("a"), "00002_b.sql", table("b"))
	ok(t, env, "-dir", dir, "up")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte("-- edited\n"+table("b")), 0o644))
	r := migrateCmd(t, env, "-dir", dir, "up")
	require.Equal(t, 1, r.code, "stdout: %s", r.stdout)
	require.Regexp(t, `^migrate: migrate up: applied migration changed: 00002_b.sql changed since it was applied `+
		`\(recorded sha256 [0-9a-f]{64}, file now [0-9a-f]{64}\): restore the file, or accept its new text \(WithAcceptDrift, -accept-drift\)\n$`, r.stderr)

	out := ok(t, env, "-dir", dir, "status")
	require.Regexp(t, `(?m)^VERSION  NAME\s+APPLIED AT\s+CHECKSUM$`, out)
	require.Regexp(t, `(?m)^00001\s+00001_a\.sql .* UTC\s+ok$`, out)
	require.Regexp(t, `(?m)^00002\s+00002_b\.sql .* UTC\s+CHANGED \(recorded [0-9a-f]{12}…, file [0-9a-f]{12}…\)$`, out)

	out = ok(t, env, "-dir", dir, "-accept-drift", "up")
	require.Contains(t, out, "nothing to do; database at version 2\n")
	out = ok(t, env, "-dir", dir, "status")
	require.Regexp(t, `^VERSION  NAME\s+APPLIED AT\n`, out, "no checksum column when every file matches")
	ok(t, env, "-dir", dir, "up")
}

func TestAllowMissingFlag(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url}
	dir := migrationsDir(t, "00001_a.sql", table("a"), "00003_c.sql", table("c"))
	ok(t, env, "-dir", dir, "up")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte(table("b")), 0o644))

	r := migrateCmd(t, env, "-dir", dir, "up")
	require.Equal(t, 1, r.code, "stdout: %s", r.stdout)
	require.Equal(t, "migrate: migrate up: missing migrations: 00002_b.sql not applied but older than the database version 3 "+
		"(a branch merged late?): apply them out of order (WithAllowMissing, -allow-missing), or renumber them after 3\n", r.stderr)

	out := ok(t, env, "-dir", dir, "-allow-missing", "up")
	require.Regexp(t, regexp.MustCompile(`(?m)^up   00002_b\.sql `), out)
	require.Equal(t, []int64{1, 3, 2}, appliedVersions(t, sqlDB(t, url)))
}

func TestUpRecordsChecksumsOfMigrationsAppliedBeforeThem(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url}
	dir := migrationsDir(t, "00001_a.sql", table("a"))
	ok(t, env, "-dir", dir, "up")
	d := sqlDB(t, url)
	_, err := d.ExecContext(t.Context(), "DROP TABLE goose_db_version_checksums") // as before this kit kept them
	require.NoError(t, err)

	out := ok(t, env, "-dir", dir, "up")
	require.Equal(t, "recorded checksum of 00001_a.sql (applied before checksums were kept)\nnothing to do; database at version 1\n", out)
	require.Equal(t, "nothing to do; database at version 1\n", ok(t, env, "-dir", dir, "up"))
}
