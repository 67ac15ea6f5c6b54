package testdb_test

import (
	"testing"
	"testing/fstest"

	"github.com/peterldowns/pgtestdb"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/testdb"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, raw string
		want      pgtestdb.Config
	}{
		{"a URL keeps its options", "postgres://admin:pw@db.example:6543/main?sslmode=require",
			pgtestdb.Config{DriverName: "pgx", User: "admin", Password: "pw", Host: "db.example", Port: "6543", Database: "main", Options: "sslmode=require"}},
		{"a URL's password is escaped for pgtestdb's URL", "postgres://admin:p%40ss%2Fw@127.0.0.1:5432/postgres",
			pgtestdb.Config{DriverName: "pgx", User: "admin", Password: "p@ss%2Fw", Host: "127.0.0.1", Port: "5432", Database: "postgres"}},
		{"a URL without port or database gets the defaults", "postgresql://u@[::1]",
			pgtestdb.Config{DriverName: "pgx", User: "u", Host: "[::1]", Port: "5432", Database: "postgres"}},
		{"a keyword/value string", "host=127.0.0.1 port=7000 user=u password=pw dbname=d sslmode=disable",
			pgtestdb.Config{DriverName: "pgx", User: "u", Password: "pw", Host: "127.0.0.1", Port: "7000", Database: "d", Options: "sslmode=disable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := testdb.Config(tc.raw)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestConfigErrorHoldsNoPassword(t *testing.T) {
	t.Parallel()
	_, err := testdb.Config("host=127.0.0.1 password=s3cret port=notaport")
	require.EqualError(t, err, "the server's connection string is not valid")
}

func TestRoleURLConnectsAsPgtestdbsRole(t *testing.T) {
	t.Parallel()
	base, err := testdb.Config("postgres://admin:pw@127.0.0.1:5432/postgres?sslmode=disable")
	require.NoError(t, err)
	require.Equal(t, "postgres://pgtdbuser:pgtdbpass@127.0.0.1:5432/dbtest_1?sslmode=disable", testdb.RoleURL(base, "dbtest_1"))
}

func TestSetsMigratorKeyCoversEverySet(t *testing.T) {
	t.Parallel()
	app := fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n")}}
	lib := fstest.MapFS{"00001_b.sql": {Data: []byte("-- +goose Up\nSELECT 2;\n")}}
	key := func(sets ...testdb.Set) string {
		t.Helper()
		m, err := testdb.NewSetsMigrator("p-", sets...)
		require.NoError(t, err)
		k, err := m.Hash()
		require.NoError(t, err)
		return k
	}
	one, err := testdb.NewMigrator(app, "p-")
	require.NoError(t, err)
	oneKey, err := one.Hash()
	require.NoError(t, err)
	require.Equal(t, oneKey, key(testdb.Set{FS: app}), "one set with the default table keeps NewMigrator's key")

	both := key(testdb.Set{FS: app}, testdb.Set{FS: lib, VersionTable: "lib_versions"})
	require.Equal(t, both, key(testdb.Set{FS: app}, testdb.Set{FS: lib, VersionTable: "lib_versions"}), "same sets, same key")
	require.Len(t, both, len(oneKey), "as long as one set's")
	for name, other := range map[string]string{
		"first set alone":         key(testdb.Set{FS: app}),
		"another version table":   key(testdb.Set{FS: app}, testdb.Set{FS: lib, VersionTable: "lib_versions2"}),
		"the sets in other order": key(testdb.Set{FS: lib, VersionTable: "lib_versions"}, testdb.Set{FS: app}),
		"another file in a set":   key(testdb.Set{FS: app}, testdb.Set{FS: app, VersionTable: "lib_versions"}),
	} {
		require.NotEqual(t, both, other, name)
	}
	_, err = testdb.NewSetsMigrator("p-")
	require.EqualError(t, err, "no migration sets")
}
