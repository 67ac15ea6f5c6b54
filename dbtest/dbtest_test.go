package dbtest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
)

// notes is a small migration set of our own, independent of the application.
var notes = fstest.MapFS{
	"00001_notes.sql": {Data: []byte("-- +goose Up\nCREATE TABLE notes (body text NOT NULL);\n-- +goose Down\nDROP TABLE notes;\n")},
	"00002_authors.sql": {Data: []byte("-- +goose Up\nALTER TABLE notes ADD author text;\n" +
		"-- +goose Down\nALTER TABLE notes DROP author;\n")},
}

// inParallel runs test as 4 parallel subtests, the i-th with me "written by
// <i>" (the row it writes), and returns the database names they return once
// all have ended.
func inParallel(t *testing.T, test func(t *testing.T, me string) (db string)) []string {
	t.Helper()
	var (
		mu    sync.Mutex
		names []string
	)
	t.Run("group", func(t *testing.T) {
		for i := range 4 {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				db := test(t, fmt.Sprint("written by ", i))
				mu.Lock()
				names = append(names, db)
				mu.Unlock()
			})
		}
	})
	return names
}

func TestParallelTestsGetIsolatedDatabases(t *testing.T) {
	t.Parallel()
	names := inParallel(t, func(t *testing.T, me string) string {
		pool := dbtest.New(t, dbtest.WithMigrations(notes))
		_, err := pool.Exec(t.Context(), "INSERT INTO notes (body) VALUES ($1)", me)
		require.NoError(t, err)
		require.Equal(t, []string{me}, noteBodies(t, t.Context(), pool))

		var db string
		require.NoError(t, pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
		return db
	})
	slices.Sort(names)
	require.Len(t, slices.Compact(names), 4, "each test has its own database")
}

// latestVersion reads the highest version number among the files of the
// repository's db/migrations.
func latestVersion(t *testing.T) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "db", "migrations", "*.sql"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var latest int64
	for _, f := range files {
		n, err := strconv.ParseInt(strings.SplitN(filepath.Base(f), "_", 2)[0], 10, 64)
		require.NoError(t, err)
		latest = max(latest, n)
	}
	return latest
}

func gooseVersion(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) int64 {
	t.Helper()
	var v int64
	require.NoError(t, q.QueryRow(t.Context(), "SELECT max(version_id) FROM goose_db_version WHERE is_applied").Scan(&v))
	return v
}

func TestNewMigratesToTheLatestVersion(t *testing.T) {
	t.Parallel()
	t.Run("the nearest db/migrations by default", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, latestVersion(t), gooseVersion(t, dbtest.New(t)))
	})
	t.Run("WithMigrations", func(t *testing.T) {
		t.Parallel()
		pool := dbtest.New(t, dbtest.WithMigrations(notes))
		require.Equal(t, int64(2), gooseVersion(t, pool))
		_, err := pool.Exec(t.Context(), "INSERT INTO notes (body, author) VALUES ('x', 'y')")
		require.NoError(t, err)
	})
	t.Run("NewURL", func(t *testing.T) {
		t.Parallel()
		conn, err := pgx.Connect(t.Context(), dbtest.NewURL(t, dbtest.WithMigrations(notes)))
		require.NoError(t, err)
		defer conn.Close(context.Background())
		require.Equal(t, int64(2), gooseVersion(t, conn))
	})
}

func TestWithoutMigrationsIsEmpty(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t, dbtest.WithoutMigrations())
	var tables int
	require.NoError(t, pool.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "+
			"WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')").Scan(&tables))
	require.Zero(t, tables)
}

func TestPoolIsSmallAndClosedAfterTheTest(t *testing.T) {
	t.Parallel()
	var dbName string
	t.Run("test", func(t *testing.T) {
		pool := dbtest.New(t, dbtest.WithoutMigrations(), dbtest.WithMaxConns(3))
		require.EqualValues(t, 3, pool.Config().MaxConns)
		require.NoError(t, pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&dbName))
	})
	requireDatabases(t, dbName, false)
}

// requireDatabases checks on the shared server whether database name exists.
// A database that should not exist may still be being dropped in the
// background: it is polled for until a deadline.
func requireDatabases(t *testing.T, name string, exists bool) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbtest.Server(t).URL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var found bool
		require.NoError(t, conn.QueryRow(t.Context(),
			"SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&found))
		if found == exists || exists || time.Now().After(deadline) {
			require.Equal(t, exists, found, "database %s", name)
			return
		}
		time.Sleep(wait) // polling the catalog for the background drop, bounded by deadline
	}
}

func TestBadOptionsFailTheTest(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "badoption", "")
	require.Error(t, err)
	require.Contains(t, out, "WithMaxConns(0): want at least 1")

	out, err = runChild(t, "badsets", "")
	require.Error(t, err)
	for _, want := range []string{
		`dbtest: WithMigrationSet("a"): fsys must not be nil`,
		"WithMigrationSet: versionTable must not be empty (each set keeps its versions in a table of its own)",
		`WithMigrationSet("goose_db_version"): that is the first set's version table: name another`,
		`WithMigrationSet("t"): version table given twice`,
	} {
		require.Contains(t, out, want, "every bad option is reported, naming what to fix")
	}

	out, err = runChild(t, "setsempty", "")
	require.Error(t, err)
	require.Contains(t, out, "dbtest: WithoutMigrations and WithMigrationSet conflict: an empty database has no migrations")
}

// The tests below re-run this test binary as a child (TestChildProcess) to
// watch a test fail. The child uses this process's server through
// DBTEST_DATABASE_URL, so what it leaves behind can be inspected here.
const childEnv = "DBTEST_TEST_CHILD"

func TestChildProcess(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("helper process for the tests that watch a test fail")
	case "fail":
		pool := dbtest.New(t, dbtest.WithMigrations(notes))
		var db string
		require.NoError(t, pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
		fmt.Println("DATABASE", db)
		t.Error("failing on purpose")
	case "pass":
		var db string
		require.NoError(t, dbtest.New(t).QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
		fmt.Println("DATABASE", db)
	case "default":
		dbtest.New(t)
	case "badoption":
		dbtest.New(t, dbtest.WithMaxConns(0))
	case "badsets":
		dbtest.New(t, dbtest.WithMigrationSet(nil, "a"), dbtest.WithMigrationSet(tags, ""),
			dbtest.WithMigrationSet(tags, "goose_db_version"), dbtest.WithMigrationSet(tags, "t"), dbtest.WithMigrationSet(notes, "t"))
	case "setsempty":
		dbtest.New(t, dbtest.WithMigrationSet(tags, "t"), dbtest.WithoutMigrations())
	case "txmaxconns":
		dbtest.Tx(t, dbtest.WithMaxConns(2))
	case "hold": // a test still running: until stdin closes
		var db string
		require.NoError(t, dbtest.New(t).QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
		fmt.Println("DATABASE", db)
		_, _ = io.Copy(io.Discard, os.Stdin)
	case "leak":
		conn, err := pgx.Connect(t.Context(), dbtest.NewURL(t, dbtest.WithoutMigrations()))
		require.NoError(t, err)
		fmt.Println("DATABASE", conn.Config().Database)
	case "where":
		var db string
		require.NoError(t, dbtest.New(t).QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
		fmt.Println("DATABASE", db)
		fmt.Println("SOURCE", dbtest.Server(t).Source())
	}
}

func runChild(t *testing.T, mode, dir string, env ...string) (string, error) {
	t.Helper()
	cmd := childCmd(t, mode, env...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// childCmd is the command of a child in mode, on this process's server
// unless env says otherwise.
func childCmd(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, dbtest.DatabaseURLEnv+"="+dbtest.Server(t).URL())
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

var databaseLine = regexp.MustCompile(`(?m)^DATABASE (\S+)$`)

func TestFailedTestKeepsItsDatabaseAndLogsItsURL(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "fail", "")
	require.Error(t, err, out)
	m := databaseLine.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	db := m[1]
	requireDatabases(t, db, true)
	t.Cleanup(func() { dropDatabase(t, db) })
	require.Regexp(t, `dbtest: kept database `+db+` for inspection: postgres://pgtdbuser:xxxxx@127\.0\.0\.1:\d+/`+db, out)
	require.NotContains(t, out, "pgtdbpass", "the role's password is masked")
}

func TestPassedTestDropsItsDatabase(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "pass", "")
	require.NoError(t, err, out)
	m := databaseLine.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.NotContains(t, out, "pgtdbpass")
	require.Empty(t, databasesOf(t, owner(m[1])),
		"dbtest.Main dropped the test's database and the clones made ahead before the process exited")
}

func TestMissingMigrationsNameTheFixes(t *testing.T) {
	t.Parallel()
	out, err := runChild(t, "default", t.TempDir())
	require.Error(t, err)
	require.Contains(t, out, "no db/migrations directory at or above")
	require.Contains(t, out, "DBTEST_MIGRATIONS_DIR")
	require.Contains(t, out, "dbtest.WithMigrations")
}

func dropDatabase(t *testing.T, name string) {
	conn, err := pgx.Connect(context.Background(), dbtest.Server(t).URL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
}

// TestMigrationsDirEnv is not parallel: it sets DBTEST_MIGRATIONS_DIR.
func TestMigrationsDirEnv(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00007_only.sql"),
		[]byte("-- +goose Up\nCREATE TABLE only_here (id int);\n-- +goose Down\nDROP TABLE only_here;\n"), 0o644))
	t.Setenv(dbtest.MigrationsDirEnv, dir)
	pool := dbtest.New(t)
	require.Equal(t, int64(7), gooseVersion(t, pool))
	_, err := pool.Exec(t.Context(), "SELECT id FROM only_here")
	require.NoError(t, err)
}

// tags is a second set of migrations, numbered from 1 as a library's are.
var tags = fstest.MapFS{
	"00001_tags.sql": {Data: []byte("-- +goose Up\nCREATE TABLE tags (name text PRIMARY KEY);\n-- +goose Down\nDROP TABLE tags;\n")},
}

func TestMigrationSetsEachKeepTheirVersionTable(t *testing.T) {
	t.Parallel()
	versions := func(t *testing.T, pool *pgxpool.Pool, table string) []int64 {
		t.Helper()
		rows, err := pool.Query(t.Context(), "SELECT version_id FROM "+table+" WHERE version_id > 0 ORDER BY version_id")
		require.NoError(t, err)
		v, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		name string
		db   func(t *testing.T) *pgxpool.Pool
	}{
		{"New", func(t *testing.T) *pgxpool.Pool {
			return dbtest.New(t, dbtest.WithMigrations(notes), dbtest.WithMigrationSet(tags, "tags_goose_db_version"))
		}},
		{"Tx", func(t *testing.T) *pgxpool.Pool {
			_, pool := dbtest.Tx(t, dbtest.WithMigrationSet(tags, "tags_goose_db_version"), dbtest.WithMigrations(notes))
			return pool
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := tc.db(t)
			require.Equal(t, []int64{1, 2}, versions(t, db, "goose_db_version"), "the first set")
			require.Equal(t, []int64{1}, versions(t, db, "tags_goose_db_version"), "the second set, in its own table")
			rows, err := db.Query(t.Context(), "SELECT count(*) FROM notes, tags")
			require.NoError(t, err)
			n, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
			require.NoError(t, err)
			require.Zero(t, n, "both sets' tables exist")
		})
	}
}
