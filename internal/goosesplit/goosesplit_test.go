package goosesplit_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/goosesplit"
)

func TestFile(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"m/00001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (n int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n    RETURN 1;\nEND;\n$$;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP FUNCTION f();\nDROP TABLE a;\n")},
		"m/00002_b.sql": {Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY a_n_idx ON a (n);\n")},
		"m/00003_c.sql": {Data: []byte("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n")},
		"m/00004_d.go":  {Data: []byte("package m\n")},
	}
	ctx := t.Context()
	up, err := goosesplit.File(ctx, fsys, "m/00001_a.sql", true)
	require.NoError(t, err)
	require.Equal(t, []goosesplit.Statement{
		{SQL: "CREATE TABLE a (n int);", InTx: true},
		{SQL: "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n    RETURN 1;\nEND;\n$$;", InTx: true},
	}, up)
	down, err := goosesplit.File(ctx, fsys, "m/00001_a.sql", false)
	require.NoError(t, err)
	require.Equal(t, []goosesplit.Statement{{SQL: "DROP FUNCTION f();", InTx: true}, {SQL: "DROP TABLE a;", InTx: true}}, down)

	noTx, err := goosesplit.File(ctx, fsys, "m/00002_b.sql", true)
	require.NoError(t, err)
	require.Equal(t, []goosesplit.Statement{{SQL: "CREATE INDEX CONCURRENTLY a_n_idx ON a (n);"}}, noTx)

	_, err = goosesplit.File(ctx, fsys, "m/00003_c.sql", true)
	require.ErrorContains(t, err, "missing '-- +goose StatementEnd' annotation")
	_, err = goosesplit.File(ctx, fsys, "m/notes.sql", true)
	require.ErrorContains(t, err, "goosesplit: m/notes.sql: ")
	_, err = goosesplit.File(ctx, nil, "00001_a.sql", true)
	require.EqualError(t, err, "goosesplit: fsys must not be nil")
}

func TestSQLFiles(t *testing.T) {
	t.Parallel()
	sqlFiles, goFiles, err := goosesplit.SQLFiles(fstest.MapFS{
		"00002_b.sql": {Data: []byte("-- +goose Up\nSELECT 2;\n")},
		"00001_a.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n")},
		"00003_c.go":  {Data: []byte("package m\n")},
		"README.md":   {Data: []byte("hi\n")},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"00001_a.sql", "00002_b.sql"}, sqlFiles)
	require.Equal(t, []string{"00003_c.go"}, goFiles)
	_, _, err = goosesplit.SQLFiles(fstest.MapFS{"README.md": {Data: []byte("hi\n")}})
	require.ErrorIs(t, err, goose.ErrNoMigrations)
}

func TestSplitLeavesEnvSubAsWritten(t *testing.T) {
	t.Setenv("GOOSESPLIT_TEST_SECRET", "s3cret-value")
	const file = "-- +goose Up\n%s\nALTER ROLE app PASSWORD '${GOOSESPLIT_TEST_SECRET}';\n-- +goose ENVSUB OFF\nSELECT '${GOOSESPLIT_TEST_SECRET}';\n"
	for _, on := range []string{"-- +goose ENVSUB ON", "-- +goose envsub on", "--+goose ENVSUB ON\r", "-- -- +goose Envsub On"} {
		fsys := fstest.MapFS{"00001_a.sql": {Data: []byte(strings.Replace(file, "%s", on, 1))}}
		got, err := goosesplit.Split(t.Context(), fsys, "00001_a.sql", true, goosesplit.Substitute)
		require.NoError(t, err, on)
		require.Equal(t, goosesplit.Migration{Tx: true, EnvSub: true, Statements: []goosesplit.Statement{
			{SQL: "ALTER ROLE app PASSWORD 's3cret-value';", InTx: true},
			{SQL: "SELECT '${GOOSESPLIT_TEST_SECRET}';", InTx: true},
		}}, got, "goose substitutes after %q", on)

		got, err = goosesplit.Split(t.Context(), fsys, "00001_a.sql", true, goosesplit.AsWritten)
		require.NoError(t, err, on)
		require.Equal(t, goosesplit.Migration{Tx: true, EnvSub: true, Statements: []goosesplit.Statement{
			{SQL: "ALTER ROLE app PASSWORD '${GOOSESPLIT_TEST_SECRET}';", InTx: true},
			{SQL: "SELECT '${GOOSESPLIT_TEST_SECRET}';", InTx: true},
		}}, got, "as written after %q", on)
	}

	plain := fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nSELECT '${GOOSESPLIT_TEST_SECRET}';\n")}}
	got, err := goosesplit.Split(t.Context(), plain, "00001_a.sql", true, goosesplit.AsWritten)
	require.NoError(t, err)
	require.Equal(t, goosesplit.Migration{Statements: []goosesplit.Statement{{SQL: "SELECT '${GOOSESPLIT_TEST_SECRET}';"}}}, got,
		"no ENVSUB: nothing substituted, no transaction")

	indented := fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\n -- +goose ENVSUB ON\nSELECT 1;\n")}}
	_, err = goosesplit.Split(t.Context(), indented, "00001_a.sql", true, goosesplit.AsWritten)
	require.ErrorContains(t, err, "contains leading whitespace", "goose refuses an indented annotation; it is left for goose to refuse")
}
