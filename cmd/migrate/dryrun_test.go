package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUpDryRunPrintsTheSQLAndChangesNothing(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url}
	dir := migrationsDir(t,
		"00001_a.sql", table("a"),
		"00002_idx.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_id ON a (id);\n-- +goose Down\nDROP INDEX IF EXISTS a_id;\n",
	)
	out := ok(t, env, "up", "-dry-run", "-dir", dir)
	require.Equal(t, `-- dry run: 2 migrations would run on the database at version 0, in this order; nothing was changed

-- 00001_a.sql (one transaction)
BEGIN;
CREATE TABLE a (id int);
COMMIT;

-- 00002_idx.sql (NO TRANSACTION: each statement commits on its own)
CREATE INDEX CONCURRENTLY IF NOT EXISTS a_id ON a (id);
`, out)
	d := sqlDB(t, url)
	require.False(t, tableExists(t, d, "goose_db_version"))
	require.False(t, tableExists(t, d, "a"))

	ok(t, env, "up-to", "1", "-dir", dir)
	out = ok(t, env, "-dir", dir, "-dry-run", "up")
	require.Contains(t, out, "-- dry run: 1 migration would run on the database at version 1")
	require.NotContains(t, out, "00001_a.sql")
	ok(t, env, "up", "-dir", dir)
	require.Equal(t, "-- dry run: nothing to do; database at version 2\n", ok(t, env, "up", "-dry-run", "-dir", dir))

	r := migrateCmd(t, env, "down", "-dry-run")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "migrate: -dry-run works with up, not down")
}

func TestFailingNoTransactionMigrationSaysWhatToDo(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	dir := migrationsDir(t, "00001_half.sql",
		"-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE half (id int);\nCREATE INDEX CONCURRENTLY half_id ON nowhere (id);\n-- +goose Down\nDROP TABLE IF EXISTS half;\n")
	r := migrateCmd(t, map[string]string{"DATABASE_URL": url}, "up", "-dir", dir)
	require.Equal(t, 1, r.code)
	require.Equal(t, `migrate: migrate up: 00001_half.sql:4: ERROR: relation "nowhere" does not exist (SQLSTATE 42P01); `+
		"NO TRANSACTION: statement 1 of 2 ran and stays applied (each committed on its own), statement 2 failed, the rest did not run: "+
		"make the migration idempotent (IF NOT EXISTS, IF EXISTS, CREATE OR REPLACE) before running it again, or undo by hand what ran\n", r.stderr)
	require.True(t, tableExists(t, sqlDB(t, url), "half"))
}

func TestUpDryRunNeverPrintsAValueFromTheEnvironment(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url, "APP_SECRET": "pw-from-env-7f3a"}
	dir := migrationsDir(t, "00001_a.sql",
		"-- +goose Up\nCREATE TABLE a (id int);\n-- +goose ENVSUB ON\nCOMMENT ON TABLE a IS '${APP_SECRET}';\n-- +goose ENVSUB OFF\n-- +goose Down\nDROP TABLE a;\n")
	out := ok(t, env, "up", "-dry-run", "-dir", dir)
	require.Equal(t, `-- dry run: 1 migration would run on the database at version 0, in this order; nothing was changed

-- 00001_a.sql (one transaction)
BEGIN;
-- ENVSUB: shown as written; up fills each ${VAR} from the environment
CREATE TABLE a (id int);
COMMENT ON TABLE a IS '${APP_SECRET}';
COMMIT;
`, out)
	d := sqlDB(t, url)
	require.False(t, tableExists(t, d, "a"))

	ok(t, env, "up", "-dir", dir)
	var comment string
	require.NoError(t, d.QueryRowContext(t.Context(), "SELECT obj_description('a'::regclass, 'pg_class')").Scan(&comment))
	require.Equal(t, "pw-from-env-7f3a", comment, "up substitutes what the dry run showed as written")
}
