package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/db"
	"github.com/cortexerp/datalayer/migrate"
)

// lastVersion is the highest migration number in db.Migrations.
func lastVersion(t *testing.T) int64 {
	t.Helper()
	names, err := fs.Glob(db.Migrations, "*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	return int64(len(names))
}

func open(t *testing.T, url string, fsys fs.FS, opts ...migrate.Option) *migrate.Migrator {
	t.Helper()
	m, err := migrate.Open(t.Context(), url, fsys, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

func TestAppMigrationsUpDownUpRoundTrip(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	m := open(t, url, db.Migrations)
	sdb := sqlDB(t, url)
	ctx := t.Context()
	empty := catalog(t, sdb)
	last := lastVersion(t)

	rs, err := m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, rs, int(last))
	for i, r := range rs {
		require.Equal(t, int64(i+1), r.Version)
		require.Equal(t, migrate.DirectionUp, r.Direction)
		require.NoError(t, r.Err)
		require.True(t, strings.HasSuffix(r.File, ".sql"), r.File)
	}
	v, err := m.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, last, v)
	full := catalog(t, sdb)
	require.NotEqual(t, empty, full)

	rs, err = m.DownTo(ctx, 0)
	require.NoError(t, err)
	require.Len(t, rs, int(last))
	require.Equal(t, last, rs[0].Version, "down runs newest first")
	require.Equal(t, empty, catalog(t, sdb), "down to 0 leaves the empty schema")
	require.Empty(t, appliedVersions(t, sdb))

	_, err = m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, full, catalog(t, sdb), "up again rebuilds the same schema")
}

// Each Down must restore exactly the schema its Up started from.
func TestAppMigrationsEachDownRestoresThePreviousSchema(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	m := open(t, url, db.Migrations)
	sdb := sqlDB(t, url)
	ctx := t.Context()
	for v := int64(1); v <= lastVersion(t); v++ {
		before := catalog(t, sdb)
		_, err := m.UpTo(ctx, v)
		require.NoError(t, err)
		after := catalog(t, sdb)
		require.NotEqual(t, before, after, "version %d changes neither schema nor data", v)
		rs, err := m.DownTo(ctx, v-1)
		require.NoError(t, err)
		require.Len(t, rs, 1)
		require.Equal(t, before, catalog(t, sdb), "down from version %d (%s) does not restore version %d", v, rs[0].File, v-1)
		_, err = m.UpTo(ctx, v)
		require.NoError(t, err)
		require.Equal(t, after, catalog(t, sdb), "redoing version %d", v)
	}
}

func TestAppMigrationsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, migrate.Validate(db.Migrations))
}

var threeTables = files(
	"00001_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
	"00002_b.sql", "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n",
	"00003_c.sql", "-- +goose Up\nCREATE TABLE c (id int);\n-- +goose Down\nDROP TABLE c;\n",
)

func TestCommandsMoveTheVersionAsDocumented(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	m := open(t, url, threeTables)
	sdb := sqlDB(t, url)
	ctx := t.Context()
	version := func() int64 {
		v, err := m.Version(ctx)
		require.NoError(t, err)
		return v
	}
	versions := func(rs []migrate.Result) []int64 {
		var vs []int64
		for _, r := range rs {
			vs = append(vs, r.Version)
		}
		return vs
	}

	require.Equal(t, int64(0), version())
	rs, err := m.Down(ctx)
	require.NoError(t, err, "down on a fresh database is a no-op")
	require.Empty(t, rs)

	rs, err = m.UpByOne(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, versions(rs))
	require.Equal(t, "00001_a.sql", rs[0].File)
	require.True(t, tableExists(t, sdb, "a"))
	require.False(t, tableExists(t, sdb, "b"))

	rs, err = m.UpTo(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, []int64{2}, versions(rs))
	require.Equal(t, int64(2), version())

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st, 3)
	require.Equal(t, migrate.StateApplied, st[0].State)
	require.Equal(t, "a", st[0].Name)
	require.Equal(t, "00001_a.sql", st[0].File)
	require.WithinDuration(t, time.Now(), st[1].AppliedAt, time.Minute)
	require.Equal(t, migrate.StatePending, st[2].State)
	require.True(t, st[2].AppliedAt.IsZero())

	rs, err = m.Redo(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{2, 2}, versions(rs))
	require.Equal(t, migrate.DirectionDown, rs[0].Direction)
	require.Equal(t, migrate.DirectionUp, rs[1].Direction)
	require.Equal(t, []int64{1, 2}, appliedVersions(t, sdb))

	rs, err = m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{3}, versions(rs))
	rs, err = m.Up(ctx)
	require.NoError(t, err, "up with nothing pending is a no-op")
	require.Empty(t, rs)
	rs, err = m.UpByOne(ctx)
	require.NoError(t, err)
	require.Empty(t, rs)

	rs, err = m.Down(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{3}, versions(rs))
	require.False(t, tableExists(t, sdb, "c"))

	rs, err = m.Reset(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{2, 1}, versions(rs))
	require.Equal(t, int64(0), version())
	require.False(t, tableExists(t, sdb, "a"))

	_, err = m.UpTo(ctx, 0)
	require.ErrorContains(t, err, "must be at least 1")
	_, err = m.DownTo(ctx, -1)
	require.ErrorContains(t, err, "must not be negative")
}

func TestBrokenMigrationLeavesTheLastGoodVersion(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	fsys := files(
		"00001_good.sql", "-- +goose Up\nCREATE TABLE good (id int);\n-- +goose Down\nDROP TABLE good;\n",
		"00002_broken.sql", "-- +goose Up\nCREATE TABLE half (id int);\n\nINSERT INTO good\n  VALUES (1, 'too many');\n-- +goose Down\nDROP TABLE half;\n",
		"00003_never.sql", "-- +goose Up\nCREATE TABLE never (id int);\n-- +goose Down\nDROP TABLE never;\n",
	)
	m := open(t, url, fsys)
	sdb := sqlDB(t, url)

	rs, err := m.Up(t.Context())
	require.Error(t, err)
	require.ErrorContains(t, err, "migrate up: 00002_broken.sql:5: ")
	require.ErrorContains(t, err, "INSERT has more expressions than target columns")
	t.Log(err)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the server error stays reachable")
	require.Equal(t, pgerrcode.SyntaxError, pgErr.Code)
	require.Len(t, rs, 1, "the migrations applied before the failure are returned")
	require.Equal(t, "00001_good.sql", rs[0].File)

	require.Equal(t, []int64{1}, appliedVersions(t, sdb))
	require.True(t, tableExists(t, sdb, "good"))
	require.False(t, tableExists(t, sdb, "half"), "the failed file's transaction is rolled back")
	require.False(t, tableExists(t, sdb, "never"))
}

func TestFailingDownNamesTheFileAndKeepsTheVersion(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	fsys := files(
		"00001_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_b.sql", "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\nDROP TABLE nope;\n",
	)
	m := open(t, url, fsys)
	sdb := sqlDB(t, url)
	_, err := m.Up(t.Context())
	require.NoError(t, err)

	_, err = m.Down(t.Context())
	require.ErrorContains(t, err, "migrate down: 00002_b.sql:5: ERROR: table \"nope\" does not exist")
	require.Equal(t, []int64{1, 2}, appliedVersions(t, sdb))
	require.True(t, tableExists(t, sdb, "b"))
}

func TestLockTimeoutIsSetInTheMigrationSession(t *testing.T) {
	t.Parallel()
	record := files("00001_record.sql",
		"-- +goose Up\nCREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout;\n-- +goose Down\nDROP TABLE seen;\n")
	for _, tc := range []struct {
		name string
		opts []migrate.Option
		want string
	}{
		{"default is 5s", nil, "5s"},
		{"WithLockTimeout sets it", []migrate.Option{migrate.WithLockTimeout(1500 * time.Millisecond)}, "1500ms"},
		{"WithLockTimeout(0) leaves the server's setting", []migrate.Option{migrate.WithLockTimeout(0)}, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := emptyDB(t)
			m := open(t, url, record, tc.opts...)
			_, err := m.Up(t.Context())
			require.NoError(t, err)
			var got string
			require.NoError(t, sqlDB(t, url).QueryRowContext(t.Context(), "SELECT lock_timeout FROM seen").Scan(&got))
			require.Equal(t, tc.want, got)
		})
	}
}

// A migration queued behind a long transaction gives up after lock_timeout
// instead of blocking every query on the table behind its ACCESS EXCLUSIVE
// request.
func TestLockTimeoutStopsADDLQueuedBehindATransaction(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	fsys := files(
		"00001_t.sql", "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n",
		"00002_alter.sql", "-- +goose Up\nALTER TABLE t ADD COLUMN note text;\n-- +goose Down\nALTER TABLE t DROP COLUMN note;\n",
	)
	m := open(t, url, fsys, migrate.WithLockTimeout(200*time.Millisecond))
	ctx := t.Context()
	_, err := m.UpTo(ctx, 1)
	require.NoError(t, err)

	sdb := sqlDB(t, url)
	tx, err := sdb.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()                             //nolint:errcheck // test cleanup
	_, err = tx.ExecContext(ctx, "SELECT * FROM t") // holds ACCESS SHARE until rollback
	require.NoError(t, err)

	start := time.Now()
	_, err = m.Up(ctx)
	require.Less(t, time.Since(start), 5*time.Second)
	require.ErrorContains(t, err, "migrate up: 00002_alter.sql:2: ")
	require.ErrorContains(t, err, "lock_timeout (200ms) expired")
	t.Log(err)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.LockNotAvailable, pgErr.Code)
	require.NoError(t, tx.Rollback())
	require.Equal(t, []int64{1}, appliedVersions(t, sdb))
}

func TestConcurrentMigratorsApplyEachVersionOnce(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	ctx := t.Context()
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		m := open(t, url, db.Migrations)
		wg.Go(func() { _, errs[i] = m.Up(ctx) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	var want []int64
	for v := int64(1); v <= lastVersion(t); v++ {
		want = append(want, v)
	}
	require.Equal(t, want, appliedVersions(t, sqlDB(t, url)))
}

func TestLockHeldTooLongFailsWithErrLocked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  migrate.Option
		hold string
	}{
		{"advisory lock", nil, "SELECT pg_advisory_lock(4097083626)"},
		{"table lock", migrate.WithTableLock(), `CREATE TABLE goose_lock (lock_id bigint PRIMARY KEY, locked boolean NOT NULL DEFAULT false,
			locked_at timestamptz, locked_by text, lease_expires_at timestamptz, updated_at timestamptz);
			INSERT INTO goose_lock VALUES (4097083626, true, now(), 'someone', now() + interval '1 hour', now())`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			url := emptyDB(t)
			conn, err := sqlDB(t, url).Conn(ctx)
			require.NoError(t, err)
			defer func() { _ = conn.Close() }()
			_, err = conn.ExecContext(ctx, tc.hold)
			require.NoError(t, err)

			m := open(t, url, threeTables, migrate.WithLockWait(time.Second), tc.opt)
			start := time.Now()
			_, err = m.Up(ctx)
			require.ErrorIs(t, err, migrate.ErrLocked)
			require.ErrorContains(t, err, "migrate up: another migration holds the migration lock")
			require.ErrorContains(t, err, "-lock-wait")
			t.Log(err)
			require.Less(t, time.Since(start), 10*time.Second)
			require.False(t, tableExists(t, sqlDB(t, url), "a"))
		})
	}
}

func TestTableLockMigrates(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	m := open(t, url, threeTables, migrate.WithTableLock())
	rs, err := m.Up(t.Context())
	require.NoError(t, err)
	require.Len(t, rs, 3)
	rs, err = m.Reset(t.Context())
	require.NoError(t, err)
	require.Len(t, rs, 3)
}

func TestNewLeavesTheCallersDBOpen(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	sdb := sqlDB(t, url)
	m, err := migrate.New(sdb, threeTables)
	require.NoError(t, err)
	_, err = m.Up(t.Context())
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, sdb.PingContext(t.Context()))
	require.Equal(t, []int64{1, 2, 3}, appliedVersions(t, sdb))
}

func TestConstructorsRejectBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"New without db", func() error { _, err := migrate.New(nil, threeTables); return err }, "db must not be nil"},
		{"New without fsys", func() error { _, err := migrate.New(sqlDB(t, "postgres://x@127.0.0.1:1/x"), nil); return err }, "fsys must not be nil"},
		{"New with no migrations", func() error {
			_, err := migrate.New(sqlDB(t, "postgres://x@127.0.0.1:1/x"), files("README.md", "hi"))
			return err
		}, "no migration files"},
		{"negative lock timeout", func() error {
			_, err := migrate.Open(ctx, "postgres://x@127.0.0.1:1/x", threeTables, migrate.WithLockTimeout(-time.Second))
			return err
		}, "WithLockTimeout: -1s must not be negative"},
		{"zero lock wait", func() error {
			_, err := migrate.Open(ctx, "postgres://x@127.0.0.1:1/x", threeTables, migrate.WithLockWait(0))
			return err
		}, "WithLockWait: 0s must be positive"},
		{"empty URL", func() error { _, err := migrate.Open(ctx, " ", threeTables); return err }, "database URL is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, tc.run(), tc.want)
		})
	}
}

func TestOpenErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3t-Pa55"
	for _, tc := range []struct {
		name, url, want string
	}{
		{"bad port", "postgres://app:" + pw + "@localhost:notaport/app", "invalid database URL"},
		{"unencoded slash in password", "postgres://app:" + pw + "/x@localhost:5432/app", "invalid database URL"},
		{"bad key=value", "host=localhost password=" + pw + " port=abc", "invalid database URL"},
		{"bad sslmode", "postgres://app:" + pw + "@localhost/app?sslmode=bogus", "invalid database URL"},
		{"closed port", "postgres://app:" + pw + "@127.0.0.1:1/app?sslmode=disable", "connect"},
		{"unknown host", "postgres://app:" + pw + "@no-such-host.invalid/app?sslmode=disable", "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			_, err := migrate.Open(ctx, tc.url, threeTables)
			require.Error(t, err)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
			for _, s := range []string{err.Error(), fmtAll(err)} {
				require.NotContains(t, s, pw)
				require.NotContains(t, s, "s3cr3t")
			}
		})
	}
}

func TestOpenErrorsKeepTheUserAndHostReadable(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(emptyDB(t))
	require.NoError(t, err)
	role := "nosuch_" + u.Port()
	for _, tc := range []struct{ name, password string }{
		// Masking every occurrence of the password printed user=xxxxx and
		// role "xxxxx" does not exist, or the address as xxxxx27.0.0.xxxxx.
		{"the password is the user name", role},
		{"the password is a piece of the host", u.Hostname()[:1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bad := *u
			bad.User = url.UserPassword(role, tc.password)
			_, err := migrate.Open(t.Context(), bad.String(), threeTables)
			require.Error(t, err)
			require.ErrorContains(t, err, "open: connect: failed to connect to `user="+role+" database=")
			require.ErrorContains(t, err, u.Host)
			require.ErrorContains(t, err, `role "`+role+`" does not exist (SQLSTATE 28000)`)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr, "the server's error stays in the chain")
			var ce *pgconn.ConnectError
			require.False(t, errors.As(err, &ce), "the ConnectError (its Config holds the password) is out of the chain")
		})
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	h1, err := migrate.Hash(threeTables)
	require.NoError(t, err)
	require.Len(t, h1, 64)
	h2, err := migrate.Hash(threeTables)
	require.NoError(t, err)
	require.Equal(t, h1, h2, "stable")

	with := func(name, body string) fs.FS {
		fsys := files()
		for k, v := range threeTables {
			fsys[k] = v
		}
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
		return fsys
	}
	changed, err := migrate.Hash(with("00003_c.sql", "-- +goose Up\nSELECT 2;\n"))
	require.NoError(t, err)
	require.NotEqual(t, h1, changed, "content counts")
	added, err := migrate.Hash(with("00004_d.sql", "x"))
	require.NoError(t, err)
	require.NotEqual(t, h1, added, "new files count")
	other, err := migrate.Hash(with("README.md", "not a migration"))
	require.NoError(t, err)
	require.Equal(t, h1, other, "non-migration files do not count")
	nested, err := migrate.Hash(with(path.Join("sub", "00009_x.sql"), "nested"))
	require.NoError(t, err)
	require.Equal(t, h1, nested, "goose reads only the root")
}

func TestGoMigrationsRunBesideSQLFiles(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	backfill := goose.NewGoMigration(2,
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO a VALUES (42)")
			return err
		}},
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "DELETE FROM a WHERE id = 42")
			return err
		}},
	)
	m := open(t, url, files("00001_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n"),
		migrate.WithGoMigrations(backfill))
	sdb := sqlDB(t, url)
	rs, err := m.Up(t.Context())
	require.NoError(t, err)
	require.Len(t, rs, 2)
	require.Equal(t, int64(2), rs[1].Version)
	require.Empty(t, rs[1].File, "a Go migration registered without a file")
	require.Contains(t, rs[1].String(), "up   version 2 (")
	var n int
	require.NoError(t, sdb.QueryRowContext(t.Context(), "SELECT count(*) FROM a WHERE id = 42").Scan(&n))
	require.Equal(t, 1, n)
	st, err := m.Status(t.Context())
	require.NoError(t, err)
	require.Equal(t, migrate.StateApplied, st[1].State)
	require.Empty(t, st[1].File)
	_, err = m.Down(t.Context())
	require.NoError(t, err)
	require.NoError(t, sdb.QueryRowContext(t.Context(), "SELECT count(*) FROM a WHERE id = 42").Scan(&n))
	require.Equal(t, 0, n)
}
