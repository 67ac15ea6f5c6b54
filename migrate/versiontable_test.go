package migrate_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/migrate"
)

func TestTwoMigrationSetsWithTheirOwnVersionTablesShareNoState(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	sdb := sqlDB(t, url)
	ctx := t.Context()
	app := open(t, url, files("00001_a.sql", fileA, "00002_b.sql", fileB))
	lib := open(t, url, files("00001_c.sql", fileC), migrate.WithVersionTable("lib_goose_db_version"))

	_, err := app.Up(ctx)
	require.NoError(t, err)
	rs, err := lib.Up(ctx)
	require.NoError(t, err)
	require.Len(t, rs, 1, "the library's version 1 is its own, not the application's")

	require.Equal(t, []int64{1, 2}, appliedVersions(t, sdb))
	require.Equal(t, []int64{1}, tableVersions(t, sdb, "lib_goose_db_version"))
	require.Equal(t, map[int64]string{1: sum(fileA), 2: sum(fileB)}, recorded(t, sdb))
	var libSum string
	require.NoError(t, sdb.QueryRowContext(ctx,
		"SELECT sha256 FROM lib_goose_db_version_checksums WHERE version = 1").Scan(&libSum))
	require.Equal(t, sum(fileC), libSum)

	st, err := lib.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st, 1)
	require.Equal(t, migrate.StateApplied, st[0].State)
	require.False(t, st[0].Drift)

	_, err = lib.Reset(ctx)
	require.NoError(t, err)
	require.Empty(t, tableVersions(t, sdb, "lib_goose_db_version"))
	require.True(t, tableExists(t, sdb, "a"), "resetting the library leaves the application's schema")
	require.True(t, tableExists(t, sdb, "b"))
	require.False(t, tableExists(t, sdb, "c"))
	require.Equal(t, []int64{1, 2}, appliedVersions(t, sdb))
}

func TestWithVersionTableRejectsBadNames(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 54)
	for _, tc := range []struct{ name, want string }{
		{"", `open: WithVersionTable: table "" must be a lower-case identifier ([a-z_][a-z0-9_]*), optionally schema-qualified`},
		{"Versions", `open: WithVersionTable: table "Versions" must be a lower-case identifier ([a-z_][a-z0-9_]*), optionally schema-qualified`},
		{"v; DROP TABLE x", `open: WithVersionTable: table "v; DROP TABLE x" must be a lower-case identifier ([a-z_][a-z0-9_]*), optionally schema-qualified`},
		{"1st", `open: WithVersionTable: table "1st" must be a lower-case identifier ([a-z_][a-z0-9_]*), optionally schema-qualified`},
		{"a.b.c", `open: WithVersionTable: table "b.c" must be a lower-case identifier ([a-z_][a-z0-9_]*), optionally schema-qualified`},
		{"Ops.v", `open: WithVersionTable: schema "Ops" must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes)`},
		{long, `open: WithVersionTable: table "` + long + `" is 54 bytes; at most 53 so that ` + long + `_checksums fits 63`},
	} {
		_, err := migrate.Open(t.Context(), "postgres://u@127.0.0.1:1/d", files("00001_a.sql", fileA), migrate.WithVersionTable(tc.name))
		require.EqualError(t, err, tc.want, "name %q", tc.name)
	}
}
