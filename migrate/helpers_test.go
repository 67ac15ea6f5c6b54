package migrate_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"testing/fstest"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
)

// emptyDB returns the URL of a fresh, empty database of this test's own.
func emptyDB(t testing.TB) string {
	t.Helper()
	return dbtest.NewURL(t, dbtest.WithoutMigrations())
}

// sqlDB opens a plain *sql.DB on url for assertions, closed at cleanup.
func sqlDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// files builds a migrations FS from name → content.
func files(kv ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i+1 < len(kv); i += 2 {
		fsys[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return fsys
}

// appliedVersions returns goose_db_version's applied versions, in row order.
func appliedVersions(t testing.TB, db *sql.DB) []int64 {
	t.Helper()
	return tableVersions(t, db, "goose_db_version")
}

// tableVersions returns the applied versions recorded in the version table
// table, in row order.
func tableVersions(t testing.TB, db *sql.DB, table string) []int64 {
	t.Helper()
	rows, err := db.QueryContext(context.Background(),
		"SELECT version_id FROM "+table+" WHERE version_id > 0 ORDER BY id")
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	var vs []int64
	for rows.Next() {
		var v int64
		require.NoError(t, rows.Scan(&v))
		vs = append(vs, v)
	}
	require.NoError(t, rows.Err())
	return vs
}

func tableExists(t testing.TB, db *sql.DB, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, db.QueryRowContext(context.Background(),
		"SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok))
	return ok
}

// catalogQuery lists, one sorted line each, what a migration can create in
// the user schemas: relations, columns (type, default, nullability,
// identity), constraints, indexes, types and enums, functions, triggers,
// views, sequences, policies, extensions, and each table's row count (for
// data migrations). goose's own tables are left out.
const catalogQuery = `
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
), rel AS (
    SELECT c.oid, c.relname, c.relkind, ns.nspname FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relname NOT LIKE 'goose\_%'
)
SELECT line FROM (
    SELECT 'schema ' || nspname AS line FROM ns
    UNION ALL
    SELECT format('extension %s %s', extname, extversion) FROM pg_extension
    UNION ALL
    SELECT format('relation %s.%s kind=%s', nspname, relname, relkind) FROM rel
    WHERE relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
    UNION ALL
    SELECT format('column %s.%s.%s %s notnull=%s default=%s identity=%s generated=%s',
                  rel.nspname, rel.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                  a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated)
    FROM pg_attribute a JOIN rel ON rel.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND rel.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
    UNION ALL
    SELECT format('constraint %s.%s on %s: %s', ns.nspname, con.conname,
                  coalesce(c.relname, t.typname), pg_get_constraintdef(con.oid))
    FROM pg_constraint con JOIN ns ON ns.oid = con.connamespace
    LEFT JOIN pg_class c ON c.oid = con.conrelid
    LEFT JOIN pg_type t ON t.oid = con.contypid
    WHERE coalesce(c.relname, '') NOT LIKE 'goose\_%'
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN rel ON rel.oid = i.indrelid
    UNION ALL
    SELECT format('type %s.%s %s %s', ns.nspname, t.typname, t.typtype,
                  coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                            FROM pg_enum e WHERE e.enumtypid = t.oid),
                           format_type(t.typbasetype, t.typtypmod)))
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'd', 'r', 'm')
       OR t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'
    UNION ALL
    SELECT format('function %s.%s(%s) kind=%s %s', ns.nspname, p.proname,
                  pg_get_function_identity_arguments(p.oid), p.prokind,
                  CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END)
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(tg.oid)
    FROM pg_trigger tg JOIN rel ON rel.oid = tg.tgrelid WHERE NOT tg.tgisinternal
    UNION ALL
    SELECT format('view %s.%s %s', nspname, relname, pg_get_viewdef(oid)) FROM rel WHERE relkind IN ('v', 'm')
    UNION ALL
    SELECT format('sequence %s.%s %s start=%s inc=%s min=%s max=%s cycle=%s', rel.nspname, rel.relname,
                  format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
    FROM pg_sequence s JOIN rel ON rel.oid = s.seqrelid
    UNION ALL
    SELECT format('rows %s.%s %s', nspname, relname,
                  (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', nspname, relname),
                                                       false, true, '')))[1]::text)
    FROM rel WHERE relkind IN ('r', 'p')
    UNION ALL
    SELECT format('policy %s on %s: %s %s using=%s check=%s', pol.polname, rel.relname, pol.polcmd,
                  pol.polpermissive, pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid))
    FROM pg_policy pol JOIN rel ON rel.oid = pol.polrelid
) lines
ORDER BY line COLLATE "C"`

// catalog dumps the schema of the database behind db (see catalogQuery).
func catalog(t testing.TB, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), catalogQuery)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	var lines []string
	for rows.Next() {
		var l string
		require.NoError(t, rows.Scan(&l))
		lines = append(lines, l)
	}
	require.NoError(t, rows.Err())
	return lines
}

// fmtAll renders err every way a log line might.
func fmtAll(err error) string {
	return fmt.Sprintf("%v|%+v|%#v|%s", err, err, err, err)
}
