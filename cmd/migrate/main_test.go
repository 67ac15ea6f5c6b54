package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/db"
	"github.com/cortexerp/datalayer/dbtest"
)

// binary is the migrate command, built once for all tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "migrate-cmd-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = os.RemoveAll(dir) }()
		binary = filepath.Join(dir, "migrate")
		// go test puts its own GOROOT/bin first on PATH.
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build migrate: %v\n%s", err, out)
			return 1
		}
		return dbtest.Main(m).Run() // stops dbtest's background work before the process exits
	}())
}

type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// migrateCmd runs the binary with env as its whole environment.
func migrateCmd(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	if err != nil {
		require.ErrorAs(t, err, &ee, "run migrate %v", args)
		r.code = ee.ExitCode()
	}
	return r
}

// ok runs the binary and requires success.
func ok(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	r := migrateCmd(t, env, args...)
	require.Equal(t, 0, r.code, "migrate %v\nstdout: %s\nstderr: %s", args, r.stdout, r.stderr)
	require.Empty(t, r.stderr)
	return r.stdout
}

// emptyDB returns the URL of a fresh, empty database of this test's own.
func emptyDB(t testing.TB) string {
	t.Helper()
	return dbtest.NewURL(t, dbtest.WithoutMigrations())
}

func sqlDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	d, err := sql.Open("pgx", url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// appliedVersions returns goose_db_version's applied versions, in row order.
func appliedVersions(t *testing.T, d *sql.DB) []int64 {
	t.Helper()
	rows, err := d.QueryContext(t.Context(), "SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY id")
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

func tableExists(t *testing.T, d *sql.DB, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, d.QueryRowContext(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok))
	return ok
}

// migrationsDir writes name → content files into a temp dir.
func migrationsDir(t *testing.T, kv ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(kv); i += 2 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, kv[i]), []byte(kv[i+1]), 0o644))
	}
	return dir
}

func table(name string) string {
	return fmt.Sprintf("-- +goose Up\nCREATE TABLE %s (id int);\n-- +goose Down\nDROP TABLE %s;\n", name, name)
}

func embeddedCount(t *testing.T) int64 {
	t.Helper()
	names, err := fs.Glob(db.Migrations, "*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	return int64(len(names))
}

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func TestEveryCommandOnTheEmbeddedMigrations(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url}
	d := sqlDB(t, url)
	n := embeddedCount(t)

	require.Equal(t, "0\n", ok(t, env, "version"))

	out := ok(t, env, "up-by-one")
	require.Regexp(t, `(?m)^up   00001_\w+\.sql \(.+\)$`, out)
	require.Contains(t, out, "database at version 1\n")

	// k is the version up-to goes to: 3, or fewer when db/migrations has
	// fewer (the one-table starter that make remove-example leaves).
	k := min(n, 3)
	out = ok(t, env, "up-to", strconv.FormatInt(k, 10))
	var upTo []int64
	for v := int64(1); v <= k; v++ {
		upTo = append(upTo, v)
		if v > 1 {
			require.Regexp(t, fmt.Sprintf(`(?m)^up   %05d_\w+\.sql `, v), out)
		}
	}
	require.Equal(t, upTo, appliedVersions(t, d))

	out = ok(t, env, "status")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, int(n)+1)
	require.Regexp(t, `^VERSION  NAME\s+APPLIED AT$`, lines[0])
	nameCol := strings.Index(lines[0], "NAME")
	atCol := strings.Index(lines[0], "APPLIED AT")
	for i, l := range lines[1:] {
		require.Equal(t, fmt.Sprintf("%05d", i+1), l[:5])
		require.Regexp(t, `^\S+\.sql`, l[nameCol:], "aligned name column: %q", l)
		if int64(i) < k {
			require.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`, l[atCol:], "applied: %q", l)
		} else {
			require.Equal(t, "pending", l[atCol:])
		}
	}

	out = ok(t, env, "up")
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), int(n-k)+1)
	require.Contains(t, out, fmt.Sprintf("database at version %d\n", n))
	require.Contains(t, ok(t, env, "up"), fmt.Sprintf("nothing to do; database at version %d\n", n))

	out = ok(t, env, "redo")
	require.Regexp(t, fmt.Sprintf(`(?m)^down %05d_\w+\.sql .*\nup   %05d_\w+\.sql `, n, n), out)
	require.Equal(t, fmt.Sprintf("%d\n", n), ok(t, env, "version"))

	out = ok(t, env, "down")
	require.Regexp(t, fmt.Sprintf(`(?m)^down %05d_`, n), out)
	require.Equal(t, fmt.Sprintf("%d\n", n-1), ok(t, env, "version"))

	ok(t, env, "down-to", strconv.FormatInt(k-1, 10))
	if k > 1 {
		require.Equal(t, upTo[:k-1], appliedVersions(t, d))
	} else {
		require.Empty(t, appliedVersions(t, d))
	}

	out = ok(t, env, "reset")
	require.Contains(t, out, "database at version 0\n")
	require.Empty(t, appliedVersions(t, d))
	require.Contains(t, ok(t, env, "down"), "nothing to do; database at version 0\n")
}

func TestConnectionVariablesInOrderOfPrecedence(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	dead := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable", closedPort(t))
	u, err := neturl.Parse(url)
	require.NoError(t, err)
	pw, _ := u.User.Password()
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(pw+"\n"), 0o600))
	discrete := map[string]string{
		"DB_MAIN_HOST": u.Hostname(), "DB_MAIN_PORT": u.Port(), "DB_MAIN_USER": u.User.Username(),
		"DB_MAIN_DBNAME": strings.TrimPrefix(u.Path, "/"), "DB_MAIN_SSLMODE": "disable",
	}
	if pw != "" {
		discrete["DB_MAIN_PASSWORD_FILE"] = pwFile
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
	}{
		{env: map[string]string{"DB_MAIN_MIGRATE_URL": url, "DATABASE_URL": dead, "DB_MAIN_URL": dead}},
		{env: map[string]string{"DB_MAIN_URL": url, "DATABASE_URL": dead}},
		{env: map[string]string{"DATABASE_URL": url}},
		{env: discrete},
		{env: map[string]string{"DB_NAMES": "main", "DB_ANALYTICS_MIGRATE_URL": url, "DATABASE_URL": dead}, args: []string{"-db", "analytics"}},
	} {
		require.Equal(t, "0\n", ok(t, tc.env, append(tc.args, "version")...), "env %v", tc.env)
	}
	r := migrateCmd(t, map[string]string{"DB_MAIN_PORT": "5432"}, "up")
	require.Equal(t, 1, r.code)
	require.Equal(t, "migrate: no database for -db main: set DB_MAIN_MIGRATE_URL (the schema owner role), DB_MAIN_URL, DATABASE_URL "+
		"or DB_MAIN_HOST (with PORT, USER, PASSWORD…)\n", r.stderr)
	r = migrateCmd(t, map[string]string{"DB_MAIN_URL": url, "DB_MAIN_HOST": "h", "DB_MAIN_MIGRATE_URL": "mysql://x"}, "up")
	require.Equal(t, 1, r.code)
	require.Equal(t, "migrate: -db main: invalid database configuration:\n"+
		"DB_MAIN_MIGRATE_URL: must be a postgres:// or postgresql:// URL (key=value strings are not accepted)\n"+
		"DB_MAIN_HOST: cannot be combined with DB_MAIN_URL; put it in the URL or unset DB_MAIN_URL\n", r.stderr)
}

func TestMigrateConnectsAsTheOwnerRole(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	u, err := neturl.Parse(url)
	require.NoError(t, err)
	// As a superuser: an application role that may not create tables, and
	// an owner that may.
	d := sqlDB(t, dbtest.Server(t).URLFor(strings.TrimPrefix(u.Path, "/")))
	role := fmt.Sprintf("app_%d", time.Now().UnixNano())
	for _, q := range []string{
		"CREATE ROLE " + role + "_app LOGIN PASSWORD 'app-Secret-1'",
		"CREATE ROLE " + role + "_owner LOGIN PASSWORD 'owner-Secret-2'",
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT CREATE, USAGE ON SCHEMA public TO " + role + "_owner",
	} {
		_, err := d.ExecContext(t.Context(), q)
		require.NoError(t, err, q)
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		for _, q := range []string{"DROP OWNED BY " + role + "_owner", "DROP ROLE " + role + "_owner", "DROP ROLE " + role + "_app"} {
			_, _ = d.ExecContext(ctx, q)
		}
	})
	withUser := func(user string) string {
		u, err := neturl.Parse(url)
		require.NoError(t, err)
		u.User = neturl.User(user)
		return u.String()
	}
	pwFile := filepath.Join(t.TempDir(), "owner-pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("owner-Secret-2\n"), 0o600))
	dir := migrationsDir(t, "00001_a.sql", table("a"))

	r := migrateCmd(t, map[string]string{"DB_MAIN_URL": withUser(role + "_app"), "DB_MAIN_PASSWORD": "app-Secret-1"}, "-dir", dir, "up")
	require.Equal(t, 1, r.code, "the application role may not create tables")
	require.Contains(t, r.stderr, "permission denied")
	require.NotContains(t, r.stderr, "Secret")

	out := ok(t, map[string]string{
		"DB_MAIN_URL": withUser(role + "_app"), "DB_MAIN_PASSWORD": "app-Secret-1",
		"DB_MAIN_MIGRATE_URL": withUser(role + "_owner"), "DB_MAIN_MIGRATE_PASSWORD_FILE": pwFile,
	}, "-dir", dir, "up")
	require.Contains(t, out, "database at version 1\n")
	var owner string
	require.NoError(t, d.QueryRowContext(t.Context(), "SELECT tableowner FROM pg_tables WHERE tablename = 'a'").Scan(&owner))
	require.Equal(t, role+"_owner", owner)
}

func TestDirFlagCreateAndValidate(t *testing.T) {
	t.Parallel()
	dir := migrationsDir(t, "00001_a.sql", table("a"))

	out := ok(t, nil, "-dir", dir, "create", "add invoices")
	require.Equal(t, "created "+filepath.Join(dir, "00002_add_invoices.sql")+"\n", out)
	out = ok(t, nil, "-dir", dir, "create", "Backfill", "go")
	require.Equal(t, "created "+filepath.Join(dir, "00003_backfill.go")+"\n", out)
	require.FileExists(t, filepath.Join(dir, "00003_backfill.go"))

	require.Equal(t, "migrations are valid\n", ok(t, nil, "-dir", dir, "validate"))
	require.Equal(t, "migrations are valid\n", ok(t, nil, "validate"), "the embedded migrations")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "00004_bad.sql"), []byte("-- +goose Up\nSELECT 1;\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00006_gap.sql"), []byte(table("g")), 0o644))
	r := migrateCmd(t, nil, "-dir", dir, "validate")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "00004_bad.sql: Down section is empty")
	require.Contains(t, r.stderr, "00006_gap.sql: version 6 out of sequence")

	r = migrateCmd(t, nil, "-dir", filepath.Join(dir, "nope"), "create", "x")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "set -dir")
}

func TestCreateWritesIntoDBMigrationsByDefault(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "db", "migrations"), 0o755))
	cmd := exec.Command(binary, "create", "first")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.FileExists(t, filepath.Join(root, "db", "migrations", "00001_first.sql"))
}

func TestFailingMigrationStopsAtTheLastGoodVersion(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	dir := migrationsDir(t,
		"00001_good.sql", table("good"),
		"00002_broken.sql", "-- +goose Up\nCREATE TABLE half (id int);\nSELEC 1;\n-- +goose Down\nDROP TABLE half;\n",
		"00003_after.sql", table("after"),
	)
	r := migrateCmd(t, map[string]string{"DATABASE_URL": url}, "-dir", dir, "up")
	require.Equal(t, 1, r.code)
	require.Regexp(t, `^up   00001_good\.sql \(.+\)\n$`, r.stdout)
	require.Contains(t, r.stderr, "migrate: migrate up: 00002_broken.sql:3: ERROR: syntax error at or near \"SELEC\"")
	d := sqlDB(t, url)
	require.Equal(t, []int64{1}, appliedVersions(t, d))
	require.False(t, tableExists(t, d, "half"))
	require.False(t, tableExists(t, d, "after"))
}

func TestBadURLFailsWithoutShowingThePassword(t *testing.T) {
	t.Parallel()
	const pw = "Sup3rS3cret"
	for _, u := range []string{
		"postgres://owner:" + pw + "@localhost:notaport/app",
		"postgres://owner:" + pw + "@localhost:5432/app?sslmode=nonsense",
		"host=localhost port=x user=owner password=" + pw,
	} {
		r := migrateCmd(t, map[string]string{"DATABASE_URL": u}, "up")
		require.Equal(t, 1, r.code, r.stderr)
		require.Contains(t, r.stderr, "migrate: -db main: invalid database configuration:\nDATABASE_URL: ")
		require.NotContains(t, r.stderr+r.stdout, pw)
	}
}

func TestUnreachableServerFailsFastAndClearly(t *testing.T) {
	t.Parallel()
	const pw = "Sup3rS3cret"
	u := fmt.Sprintf("postgres://owner:%s@127.0.0.1:%d/app?sslmode=disable", pw, closedPort(t))
	r := migrateCmd(t, map[string]string{"DATABASE_URL": u}, "up")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "connect")
	require.Contains(t, r.stderr, "connection refused")
	require.Contains(t, r.stderr, "(connection from DATABASE_URL)\n")
	require.NotContains(t, r.stderr+r.stdout, pw)
	require.Less(t, r.took, 15*time.Second)
}

func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"sideways"}, `unknown command "sideways"`},
		{[]string{"up-to"}, "up-to: missing version V"},
		{[]string{"up-to", "abc"}, `up-to: version "abc" must be a whole number ≥ 1`},
		{[]string{"up-to", "0"}, `must be a whole number ≥ 1`},
		{[]string{"down-to", "-1"}, `down-to: version "-1" must be a whole number ≥ 0`},
		{[]string{"down-to", "1", "2"}, `down-to: unexpected argument "2"`},
		{[]string{"up", "now"}, `up: unexpected argument "now"`},
		{[]string{"create"}, "create: missing migration NAME"},
		{[]string{"create", "x", "yaml"}, `create: kind "yaml" must be sql or go`},
		{[]string{"-nope", "up"}, "flag provided but not defined: -nope"},
		{[]string{"-lock-timeout", "soon", "up"}, `invalid value "soon" for flag -lock-timeout`},
		{[]string{"-lock-wait", "0s", "up"}, "-lock-wait 0s must be positive"},
		{[]string{"up", "-nope"}, "flag provided but not defined: -nope"},
		{[]string{"up-to", "-allow-missing"}, "up-to: missing version V"},
		{[]string{"up", "--", "-allow-missing"}, `up: unexpected argument "-allow-missing"`},
		{[]string{"-db", "bad-name", "up"}, `-db "bad-name": a database name is a letter followed by letters, digits or _ (as in DB_NAMES)`},
	} {
		r := migrateCmd(t, map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/x"}, tc.args...)
		require.Equal(t, 2, r.code, "migrate %v: %s", tc.args, r.stderr)
		require.Contains(t, r.stderr, tc.want, "migrate %v", tc.args)
		require.Contains(t, r.stderr, "Run 'migrate -h' for usage.")
	}
	r := migrateCmd(t, nil, "-h")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "usage: migrate [flags] COMMAND [ARGS] [flags]")
	require.Contains(t, r.stdout, "-pgbouncer")
	require.Regexp(t, `(?m)^  create NAME \[sql\|go\]  write the next numbered migration file`, r.stdout)

	r = migrateCmd(t, nil, "-version")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `^migrate \S+ \(github.com/cortexerp/datalayer\), goose v3\.\d+\.\d+\n$`, r.stdout)
}

func TestFlagsAfterTheCommand(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url}
	dir := migrationsDir(t, "00001_a.sql", table("a"), "00002_b.sql", table("b"))
	require.Contains(t, ok(t, env, "up-to", "1", "-dir", dir), "database at version 1\n")
	require.Contains(t, ok(t, env, "up", "-dir", dir, "-lock-wait", "10s"), "database at version 2\n")
	require.Equal(t, []int64{1, 2}, appliedVersions(t, sqlDB(t, url)))
}

func TestTwoProcessesMigrateAtOnceEachVersionOnce(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	env := map[string]string{"DATABASE_URL": url}
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Go(func() { results[i] = migrateCmd(t, env, "up") })
	}
	wg.Wait()
	applied := 0
	for _, r := range results {
		require.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
		applied += len(regexp.MustCompile(`(?m)^up   `).FindAllString(r.stdout, -1))
	}
	n := embeddedCount(t)
	require.Equal(t, int(n), applied, "between them the two processes applied each migration once")
	var want []int64
	for v := int64(1); v <= n; v++ {
		want = append(want, v)
	}
	require.Equal(t, want, appliedVersions(t, sqlDB(t, url)))
}

func TestLockTimeoutAndPgbouncerFlags(t *testing.T) {
	t.Parallel()
	dir := migrationsDir(t, "00001_seen.sql",
		"-- +goose Up\nCREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout;\n-- +goose Down\nDROP TABLE seen;\n")
	for _, tc := range []struct {
		flags []string
		want  string
		table bool
	}{
		{nil, "5s", false},
		{[]string{"-lock-timeout", "1500ms"}, "1500ms", false},
		{[]string{"-pgbouncer", "-lock-timeout", "2s"}, "2s", true},
	} {
		url := emptyDB(t)
		ok(t, map[string]string{"DATABASE_URL": url}, append(tc.flags, "-dir", dir, "up")...)
		d := sqlDB(t, url)
		var got string
		require.NoError(t, d.QueryRowContext(t.Context(), "SELECT lock_timeout FROM seen").Scan(&got))
		require.Equal(t, tc.want, got, "flags %v", tc.flags)
		require.Equal(t, tc.table, tableExists(t, d, "goose_lock"), "flags %v: table lock", tc.flags)
	}
}
