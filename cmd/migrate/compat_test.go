package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTypicalGooseProject runs a project numbered the way goose create does
// by default (timestamps), with an irreversible migration, through
// validate, up, fix and up again on a fresh database.
func TestTypicalGooseProject(t *testing.T) {
	t.Parallel()
	dir := migrationsDir(t,
		"20261201190800_a.sql", table("a"),
		"20261202080000_drop_legacy.sql", "-- +goose Up\nDROP TABLE IF EXISTS legacy;\n-- +goose Down\n-- migrate:no-down the dropped rows cannot come back\n",
	)
	require.Equal(t, "migrations are valid\n", ok(t, nil, "validate", "-dir", dir))
	r := migrateCmd(t, nil, "validate", "-dir", dir, "-numbering", "sequential")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "20261201190800_a.sql: timestamp version 20261201190800 in a project numbered sequentially (pinned by -numbering / WithNumbering)")

	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url}
	require.Contains(t, ok(t, env, "up", "-dir", dir), "database at version 20261202080000\n")

	out := ok(t, nil, "fix", "-dir", dir)
	require.Equal(t, "renamed "+filepath.Join(dir, "20261201190800_a.sql")+" → 00001_a.sql\n"+
		"renamed "+filepath.Join(dir, "20261202080000_drop_legacy.sql")+" → 00002_drop_legacy.sql\n"+
		"renumbered 2 migrations; a database that applied them under their old versions would run them again\n", out)
	require.Equal(t, "nothing to fix: no timestamped migrations in "+dir+"\n", ok(t, nil, "fix", "-dir", dir))
	require.Equal(t, "migrations are valid\n", ok(t, nil, "-numbering", "sequential", "-dir", dir, "validate"))
	out = ok(t, nil, "-dir", dir, "create", "next")
	require.Equal(t, "created "+filepath.Join(dir, "00003_next.sql")+"\n", out)

	fresh := emptyDB(t)
	require.Contains(t, ok(t, map[string]string{"DATABASE_URL": fresh}, "up", "-dir", dir), "database at version 3\n")
	require.Equal(t, []int64{1, 2, 3}, appliedVersions(t, sqlDB(t, fresh)))

	r = migrateCmd(t, nil, "-numbering", "roman", "validate")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, `migrate: -numbering: numbering "roman": want sequential, timestamp or auto`)
}

func TestTableFlag(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url}
	dir := migrationsDir(t, "00001_a.sql", table("a"))
	require.Contains(t, ok(t, env, "up", "-dir", dir, "-table", "app_schema_version"), "database at version 1\n")
	d := sqlDB(t, url)
	require.True(t, tableExists(t, d, "app_schema_version"))
	require.True(t, tableExists(t, d, "app_schema_version_checksums"))
	require.False(t, tableExists(t, d, "goose_db_version"))
	require.Equal(t, "1\n", ok(t, env, "version", "-dir", dir, "-table", "app_schema_version"))
}
