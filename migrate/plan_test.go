package migrate_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/migrate"
)

const noTxIndex = `-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS n (id int);
CREATE INDEX CONCURRENTLY n_id ON n (id);

-- +goose Down
DROP TABLE n;
`

func TestPlanUpListsTheSQLAndChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := emptyDB(t)
	d := sqlDB(t, url)
	goMig := goose.NewGoMigration(4, &goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error { return nil }}, nil)
	fsys := files("00001_a.sql", upA, "00002_b.sql", upB, "00003_n.sql", noTxIndex)
	m, err := migrate.Open(ctx, url, fsys, migrate.WithGoMigrations(goMig))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })

	plan, err := m.PlanUp(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(0), plan.Version)
	require.Equal(t, []migrate.Planned{
		{Version: 1, File: "00001_a.sql", Transaction: true, Statements: []string{"CREATE TABLE a (id int);"}},
		{Version: 2, File: "00002_b.sql", Transaction: true, Statements: []string{"CREATE TABLE b (id int);"}},
		{Version: 3, File: "00003_n.sql", Statements: []string{"CREATE TABLE IF NOT EXISTS n (id int);", "CREATE INDEX CONCURRENTLY n_id ON n (id);"}},
		{Version: 4, Go: true},
	}, plan.Migrations)
	require.False(t, tableExists(t, d, "goose_db_version"), "a dry run creates no table")
	require.False(t, tableExists(t, d, "goose_db_version_checksums"))

	_, err = m.UpTo(ctx, 1)
	require.NoError(t, err)
	plan, err = m.PlanUp(ctx)
	require.NoError(t, err)
	require.Len(t, plan.Migrations, 3, "only the pending ones")
	require.Equal(t, int64(2), plan.Migrations[0].Version)
	require.Equal(t, int64(1), plan.Version)
	require.Equal(t, []int64{1}, appliedVersions(t, d))
	require.False(t, tableExists(t, d, "b"))
}

func TestPlanUpTakesNoLock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := emptyDB(t)
	conn, err := sqlDB(t, url).Conn(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	// Another migrator holds the migration lock.
	_, err = conn.ExecContext(ctx, "SELECT pg_advisory_lock(4097083626)")
	require.NoError(t, err)

	m, err := migrate.Open(ctx, url, files("00001_a.sql", upA), migrate.WithLockWait(time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	_, err = m.Up(ctx)
	require.ErrorIs(t, err, migrate.ErrLocked, "the lock is held")
	plan, err := m.PlanUp(ctx)
	require.NoError(t, err, "a dry run does not wait for it")
	require.Len(t, plan.Migrations, 1)
}

func TestPlanUpRefusesWhatUpRefuses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := emptyDB(t)
	m, err := migrate.Open(ctx, url, files("00001_a.sql", upA, "00003_c.sql", upB))
	require.NoError(t, err)
	_, err = m.Up(ctx)
	require.NoError(t, err)
	require.NoError(t, m.Close())

	m, err = migrate.Open(ctx, url, files("00001_a.sql", "-- edited\n"+upA, "00002_b.sql", upB, "00003_c.sql", upB))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	_, err = m.PlanUp(ctx)
	require.ErrorIs(t, err, migrate.ErrDrift)
	require.ErrorContains(t, err, "migrate up (dry run): applied migration changed: 00001_a.sql changed since it was applied")

	m2, err := migrate.Open(ctx, url, files("00001_a.sql", upA, "00002_b.sql", upB, "00003_c.sql", upB))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m2.Close() })
	_, err = m2.PlanUp(ctx)
	require.ErrorIs(t, err, migrate.ErrMissing)

	m3, err := migrate.Open(ctx, url, files("00001_a.sql", upA, "00002_b.sql", upB, "00003_c.sql", upB), migrate.WithAllowMissing())
	require.NoError(t, err)
	t.Cleanup(func() { _ = m3.Close() })
	plan, err := m3.PlanUp(ctx)
	require.NoError(t, err)
	require.Len(t, plan.Migrations, 1)
	require.Equal(t, "00002_b.sql", plan.Migrations[0].File)
}

func TestFailingNoTransactionMigrationSaysWhatRan(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := emptyDB(t)
	d := sqlDB(t, url)
	broken := `-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE first (id int);
CREATE TABLE second (id int);
INSERT INTO missing VALUES (1);
CREATE TABLE fourth (id int);

-- +goose Down
DROP TABLE IF EXISTS fourth, second, first;
`
	m, err := migrate.Open(ctx, url, files("00001_a.sql", upA, "00002_broken.sql", broken))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	_, err = m.Up(ctx)
	require.EqualError(t, err, `migrate up: 00002_broken.sql:5: ERROR: relation "missing" does not exist (SQLSTATE 42P01); `+
		"NO TRANSACTION: statements 1-2 of 4 ran and stay applied (each committed on its own), statement 3 failed, the rest did not run: "+
		"make the migration idempotent (IF NOT EXISTS, IF EXISTS, CREATE OR REPLACE) before running it again, or undo by hand what ran")
	require.True(t, tableExists(t, d, "first"))
	require.True(t, tableExists(t, d, "second"))
	require.False(t, tableExists(t, d, "fourth"))
	require.Equal(t, []int64{1}, appliedVersions(t, d))
}

func TestFailingNoTransactionMigrationWithARepeatedStatementSaysLess(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := emptyDB(t)
	twice := "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE t1 (id int);\nCREATE TABLE t1 (id int);\n-- +goose Down\nDROP TABLE IF EXISTS t1;\n"
	m, err := migrate.Open(ctx, url, files("00001_twice.sql", twice))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	_, err = m.Up(ctx)
	require.ErrorContains(t, err, `ERROR: relation "t1" already exists (SQLSTATE 42P07); NO TRANSACTION: some of its 2 statements may have run, `+
		"and what ran stays applied: make the migration idempotent")
	require.True(t, tableExists(t, sqlDB(t, url), "t1"))
}

func TestPlanUpLeavesEnvSubAsWritten(t *testing.T) {
	t.Setenv("MIGRATE_PLAN_TEST_SECRET", "pw-from-env-9c1e")
	ctx := t.Context()
	url := emptyDB(t)
	fsys := files("00001_a.sql", "-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE a (id int);\nCOMMENT ON TABLE a IS '${MIGRATE_PLAN_TEST_SECRET}';\n-- +goose Down\nDROP TABLE a;\n")
	m, err := migrate.Open(ctx, url, fsys)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })

	plan, err := m.PlanUp(ctx)
	require.NoError(t, err)
	require.Equal(t, []migrate.Planned{{Version: 1, File: "00001_a.sql", Transaction: true, EnvSub: true,
		Statements: []string{"CREATE TABLE a (id int);", "COMMENT ON TABLE a IS '${MIGRATE_PLAN_TEST_SECRET}';"}}}, plan.Migrations)

	_, err = m.Up(ctx)
	require.NoError(t, err)
	var comment string
	require.NoError(t, sqlDB(t, url).QueryRowContext(ctx, "SELECT obj_description('a'::regclass, 'pg_class')").Scan(&comment))
	require.Equal(t, "pw-from-env-9c1e", comment, "Up substitutes what the plan showed as written")
}
