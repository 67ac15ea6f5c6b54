package removeexample_test

import (
	"bytes"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/execmode"
	"github.com/cortexerp/datalayer/localpg"
)

// TestStartYourOwnServiceAsTheREADMESays clones the repository's HEAD into a
// temporary directory (uncommitted changes are not part of it) and runs, one
// line at a time, the shell commands of the README's "Start your own service"
// block in it: make remove-example, the sample schema, queries and main of
// testdata/tickets in place of the starter, make generate, make verify, go
// build, cmd/migrate up and the sample service, against a database of a
// PostgreSQL this test starts (never the server of the shell's DATABASE_URL).
//
// Between make remove-example and the next line it checks what the command
// removed and left, that it refuses a dirty work tree, does nothing the
// second time, and that the starter builds. At the end it checks the Go types
// sqlc generated for the sample schema (no pgtype wrapper), the service's
// output (testdata/tickets.golden), the database it left, and that nothing
// depends on the example. The README's Go excerpt must be the sample main's,
// word for word. It stops short of make test in the copy: every suite again
// would take many minutes more.
func TestStartYourOwnServiceAsTheREADMESays(t *testing.T) {
	for _, tool := range []string{"git", "make", "bash", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not on PATH; CI=true: the README's path must be tried", tool)
			}
			t.Skipf("%s is not on PATH: the README's path cannot be tried here", tool)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()

	root := strings.TrimSpace(run(ctx, t, ".", nil, "git", "rev-parse", "--show-toplevel"))
	repo := filepath.Join(t.TempDir(), "kit")
	run(ctx, t, ".", nil, "git", "clone", "--quiet", "--no-hardlinks", root, repo)
	if _, err := os.Stat(filepath.Join(repo, "erp")); errors.Is(err, fs.ErrNotExist) {
		t.Skip("HEAD has no example (make remove-example ran and was committed): nothing to take out")
	}

	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	require.NoError(t, err)
	steps := shellSteps(t, string(readme))
	require.Equal(t, sampleExcerpt(t, filepath.Join(repo, "internal", "removeexample", "testdata", "tickets", "cmd", "tickets", "main.go")),
		block(t, string(readme), "own-service-go", "```go"),
		"README.md's Go excerpt between <!-- own-service-go:begin --> and <!-- own-service-go:end --> must be the text between // readme:begin and // readme:end of testdata/tickets/cmd/tickets/main.go")

	srv, err := localpg.Start(ctx, localpg.WithSources(localpg.SourceDocker, localpg.SourceBinaries))
	require.NoError(t, err, "start a PostgreSQL for the sample service")
	t.Cleanup(func() { _ = srv.Stop(context.WithoutCancel(ctx)) })
	dbURL := createDatabase(ctx, t, srv, "tickets")
	// A temporary directory of the copy's own: golangci-lint (make verify)
	// refuses to run while another run on the machine holds its lock file in
	// TMPDIR.
	tmp := filepath.Join(t.TempDir(), "tmp")
	require.NoError(t, os.Mkdir(tmp, 0o700))
	env := childEnv(dbURL, tmp)

	// A dirty work tree: refused without FORCE=1, nothing removed.
	stray := filepath.Join(repo, "stray.txt")
	require.NoError(t, os.WriteFile(stray, []byte("uncommitted\n"), 0o600))
	out, err := command(ctx, repo, env, "make", "--no-print-directory", "remove-example")
	require.Error(t, err, "make remove-example on a dirty work tree:\n%s", out)
	require.Contains(t, out, "remove-example: the work tree has uncommitted changes (git status); commit them first, or run make remove-example FORCE=1")
	require.DirExists(t, filepath.Join(repo, "erp"), "a refused run removes nothing")
	require.NoError(t, os.Remove(stray))

	var serviceOut string
	for i, step := range steps {
		stdout := runStep(ctx, t, repo, env, step)
		switch {
		case i == 0:
			require.Contains(t, stdout, "remove-example: done", step)
			checkRemoved(ctx, t, root, repo, env)
		case i == len(steps)-1:
			serviceOut = stdout
		}
	}

	want, err := os.ReadFile(filepath.Join(repo, "internal", "removeexample", "testdata", "tickets.golden"))
	require.NoError(t, err)
	require.Equal(t, string(want), serviceOut, "the output of %q", steps[len(steps)-1])
	checkTypes(t, filepath.Join(repo, "dbgen"))
	checkDatabase(ctx, t, dbURL)

	// The README's last two steps again in every other exec mode (exec and
	// simple_protocol are those used behind PgBouncer), each on a database
	// of its own: enums, enum arrays, COPY and batches in each.
	migrateStep := steps[slices.IndexFunc(steps, func(s string) bool { return strings.HasPrefix(s, "go run ./cmd/migrate up") })]
	serviceStep := steps[len(steps)-1]
	for _, mode := range execmode.Names() {
		if mode == defaultExecMode {
			continue
		}
		t.Run("DB_MAIN_EXEC_MODE="+mode, func(t *testing.T) {
			dbURL := createDatabase(ctx, t, srv, "tickets_"+mode)
			env := append(childEnv(dbURL, tmp), "DB_MAIN_EXEC_MODE="+mode)
			runStep(ctx, t, repo, env, migrateStep)
			require.Equal(t, string(want), runStep(ctx, t, repo, env, serviceStep), "the output of %q", serviceStep)
			checkDatabase(ctx, t, dbURL)
		})
	}

	// Nothing left depends on the example, test files included.
	for _, pkg := range strings.Fields(run(ctx, t, repo, env, "go", "list", "-deps", "-test", "./...")) {
		require.False(t, pkg == example || strings.HasPrefix(pkg, example+"/"), "a package left behind depends on %s", pkg)
	}
}

// example is the import path of the example application.
const example = "github.com/cortexerp/datalayer/erp"

// defaultExecMode is the exec mode the provider uses when
// DB_<NAME>_EXEC_MODE is unset: the README's path runs in it.
const defaultExecMode = "cache_statement"

// shellSteps returns the lines of the README's own-service shell block and
// checks that they are the README's path: make remove-example first, then
// make generate, make verify, go build, cmd/migrate up, in this order, and
// the sample service last.
func shellSteps(t *testing.T, readme string) []string {
	t.Helper()
	var steps []string
	for l := range strings.SplitSeq(block(t, readme, "own-service", "```sh"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			steps = append(steps, l)
		}
	}
	want := []string{"make remove-example", "make generate", "make verify", "go build ./...", "go run ./cmd/migrate up", "go run ./cmd/tickets"}
	next := 0
	for _, s := range steps {
		if next < len(want) && (s == want[next] || strings.HasPrefix(s, want[next]+" ")) {
			next++
		}
	}
	require.Equal(t, len(want), next, "README.md's own-service block must run, in this order, %q; it has %q", want, steps)
	require.True(t, strings.HasPrefix(steps[0], want[0]), "README.md's own-service block must begin with make remove-example")
	require.True(t, strings.HasPrefix(steps[len(steps)-1], want[len(want)-1]), "README.md's own-service block must end with the sample service")
	return steps
}

// block returns the body of the fenced block (opened by fence) between
// <!-- name:begin --> and <!-- name:end --> in readme.
func block(t *testing.T, readme, name, fence string) string {
	t.Helper()
	begin, end := "<!-- "+name+":begin -->\n", "<!-- "+name+":end -->"
	_, rest, ok := strings.Cut(readme, begin)
	require.True(t, ok, "README.md has no %q", begin)
	body, _, ok := strings.Cut(rest, end)
	require.True(t, ok, "README.md has no %q after %q", end, begin)
	body, ok = strings.CutPrefix(body, fence+"\n")
	require.True(t, ok, "README.md: a %s block must follow %q", fence, begin)
	body, ok = strings.CutSuffix(body, "```\n")
	require.True(t, ok, "README.md: the block after %q must end with ``` right before %q", begin, end)
	return body
}

// sampleExcerpt returns the lines between "// readme:begin" and
// "// readme:end" of file, one tab of indentation taken off.
func sampleExcerpt(t *testing.T, file string) string {
	t.Helper()
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(src), "\t// readme:begin\n")
	require.True(t, ok, "%s: no // readme:begin line", file)
	body, _, ok := strings.Cut(rest, "\t// readme:end\n")
	require.True(t, ok, "%s: no // readme:end line", file)
	var b strings.Builder
	for l := range strings.SplitAfterSeq(body, "\n") {
		b.WriteString(strings.TrimPrefix(l, "\t"))
	}
	return b.String()
}

// checkRemoved checks the copy right after make remove-example: the example
// is gone, db/ and dbgen/ hold the starter only, a second run does nothing,
// and the starter builds.
func checkRemoved(ctx context.Context, t *testing.T, root, repo string, env []string) {
	t.Helper()
	for _, gone := range []string{"erp", "cmd/demo", "internal/bench/load_products.go", "integration/usersday_test.go"} {
		require.NoFileExists(t, filepath.Join(repo, gone))
		require.NoDirExists(t, filepath.Join(repo, gone))
	}
	// db/ holds the starter and nothing else: a migration or a query added to
	// the example must be added to tools/remove-example.sh's list too.
	for _, kind := range []string{"migrations", "queries"} {
		require.Equal(t, sqlFiles(t, filepath.Join(root, "tools", "starter", kind)), sqlFiles(t, filepath.Join(repo, "db", kind)),
			"db/%s after make remove-example: only the starter's files", kind)
	}
	require.Equal(t, []string{"notes.sql.go"}, globBase(t, filepath.Join(repo, "dbgen", "*.sql.go")),
		"dbgen/ after make remove-example: only the starter's queries")
	require.NoFileExists(t, filepath.Join(repo, "dbgen", "copyfrom.go"), "a stale sqlc file is removed")

	out := run(ctx, t, repo, env, "make", "--no-print-directory", "remove-example")
	require.Contains(t, out, "remove-example: nothing to do, the example is already removed", "a second run")
	run(ctx, t, repo, env, "go", "build", "./...")
}

// checkTypes checks the Go type of every field sqlc generated for the
// sample's tables and parameters, and that no file of dbgen uses pgtype.
func checkTypes(t *testing.T, dbgen string) {
	t.Helper()
	want := map[string]string{
		"Project.ID": "int64", "Project.Name": "string", "Project.Settings": "json.RawMessage",
		"Project.Budget": "*decimal.Decimal", "Project.CreatedAt": "time.Time",

		"Ticket.ID": "uuid.UUID", "Ticket.ProjectID": "int64", "Ticket.Title": "string",
		"Ticket.Status": "TicketStatus", "Ticket.Labels": "[]Label", "Ticket.Estimate": "decimal.Decimal",
		"Ticket.Details": "json.RawMessage", "Ticket.OpenedAt": "time.Time", "Ticket.ClosedAt": "*time.Time",
		"Ticket.RemindAt": "*time.Time", "Ticket.DueOn": "*time.Time", "Ticket.Assignee": "*uuid.UUID",

		"TicketEvent.TicketID": "uuid.UUID", "TicketEvent.At": "time.Time", "TicketEvent.Note": "string",
		"TicketEvent.Data": "json.RawMessage",

		"TicketListWithProjectRow.Ticket": "Ticket", "TicketListWithProjectRow.Project": "Project",
		"TicketListLabelledParams.ProjectID": "int64", "TicketListLabelledParams.Labels": "[]Label",
		"TicketAssignParams.Assignee": "*uuid.UUID", "TicketAssignParams.ID": "uuid.UUID",
		"TicketSetStatusParams.Status": "TicketStatus", "TicketSetStatusParams.ID": "uuid.UUID",
		"TicketEventAddParams.TicketID": "uuid.UUID", "TicketEventAddParams.At": "time.Time",
		"TicketEventAddParams.Note": "string", "TicketEventAddParams.Data": "json.RawMessage",
		"TicketOpenParams.ProjectID": "int64", "TicketOpenParams.Title": "string", "TicketOpenParams.Labels": "[]Label",
		"TicketOpenParams.Estimate": "decimal.Decimal", "TicketOpenParams.Details": "json.RawMessage",
		"TicketOpenParams.RemindAt": "*time.Time", "TicketOpenParams.DueOn": "*time.Time",
	}
	structs := map[string]bool{}
	for k := range want {
		name, _, _ := strings.Cut(k, ".")
		structs[name] = true
	}
	files, err := filepath.Glob(filepath.Join(dbgen, "*.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	fset := token.NewFileSet()
	got := map[string]string{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NotContains(t, string(src), "pgtype.", "dbgen/%s: a pgtype wrapper", filepath.Base(f))
		file, err := parser.ParseFile(fset, f, src, 0)
		require.NoError(t, err)
		ast.Inspect(file, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok || !structs[ts.Name.Name] {
				return true
			}
			for _, fld := range st.Fields.List {
				var typ strings.Builder
				require.NoError(t, printer.Fprint(&typ, fset, fld.Type))
				for _, name := range fld.Names {
					got[ts.Name.Name+"."+name.Name] = typ.String()
				}
			}
			return false
		})
	}
	require.Equal(t, want, got, "the Go types sqlc generated for testdata/tickets")
}

// checkDatabase checks what migrating and the sample service left in the
// database: the nested call that failed left nothing, the others did.
func checkDatabase(ctx context.Context, t testing.TB, dbURL string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	rows := func(sql string) []string {
		t.Helper()
		r, err := conn.Query(ctx, sql)
		require.NoError(t, err, sql)
		got, err := pgx.CollectRows(r, pgx.RowTo[string])
		require.NoError(t, err, sql)
		return got
	}
	require.Equal(t, []string{"1"}, rows("SELECT max(version_id)::text FROM goose_db_version"), "cmd/migrate up applied 00001_tickets.sql")
	require.Equal(t, []string{`'tracker-2' '{"sla_hours": 24}' '1500.50'`},
		rows("SELECT format('%L %L %L', name, settings, budget) FROM projects"))
	require.Equal(t, []string{
		`'crash on save' 'open' '{bug}' '2.50' '{"os": "linux"}' 'f' '2026-12-01 09:30:00' '2026-12-24' '6f1c2a4e-0b7d-4c3e-9a51-2d8e7f30b6c1'`,
		`'dark mode' 'in_progress' '{feature,docs}' '8.00' NULL 'f' NULL NULL NULL`,
		`'typo in README' 'closed' '{docs,bug}' '0.25' NULL 't' NULL NULL '6f1c2a4e-0b7d-4c3e-9a51-2d8e7f30b6c1'`,
	}, rows(`SELECT format('%L %L %L %L %L %L %L %L %L', title, status, labels, estimate, details,
		closed_at IS NOT NULL, remind_at, due_on, assignee) FROM tickets ORDER BY title`))
	require.Equal(t, []string{
		`'crash on save' 'reported' '{"by": "support"}'`,
		`'crash on save' 'assigned to alice' NULL`,
		`'typo in README' 'reported' NULL`,
	}, rows(`SELECT format('%L %L %L', t.title, e.note, e.data) FROM ticket_events e
		JOIN tickets t ON t.id = e.ticket_id ORDER BY t.title, e.at`), "the event of the nested call that failed is rolled back")
}

// createDatabase creates the database name on srv and returns its URL.
func createDatabase(ctx context.Context, t testing.TB, srv *localpg.Server, name string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, srv.URL())
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	return srv.URLFor(name)
}

// childEnv is the test's environment for the commands run in the copy, with
// the variables that name a database (DATABASE_URL, TEST_DATABASE_URL, DB_*,
// PG*) replaced by DATABASE_URL=dbURL, and TMPDIR=tmp.
func childEnv(dbURL, tmp string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "DATABASE_URL" || k == "TEST_DATABASE_URL" || k == "TMPDIR" || strings.HasPrefix(k, "DB_") || strings.HasPrefix(k, "PG")
	})
	return append(env, "DATABASE_URL="+dbURL, "TMPDIR="+tmp)
}

// runStep runs one line of the README's block with bash in dir and returns
// its standard output; it fails the test, showing both outputs, on an error.
func runStep(ctx context.Context, t testing.TB, dir string, env []string, step string) string {
	t.Helper()
	began := time.Now()
	cmd := exec.CommandContext(ctx, "bash", "-o", "errexit", "-o", "nounset", "-o", "pipefail", "-c", step)
	cmd.Dir, cmd.Env, cmd.WaitDelay = dir, env, 10*time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "README step %q in %s:\nstdout:\n%s\nstderr:\n%s", step, dir, stdout.String(), stderr.String())
	t.Logf("%s (%.1fs)", step, time.Since(began).Seconds())
	return stdout.String()
}

// command runs name in dir and returns its combined output; env nil is the
// test's environment.
func command(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env, cmd.WaitDelay = dir, env, 10*time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// run is command that fails the test on an error.
func run(ctx context.Context, t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	began := time.Now()
	line := strings.Join(append([]string{name}, args...), " ")
	out, err := command(ctx, dir, env, name, args...)
	require.NoError(t, err, "%s in %s:\n%s", line, dir, out)
	t.Logf("%s (%.1fs)", line, time.Since(began).Seconds())
	return out
}

func sqlFiles(t *testing.T, dir string) []string {
	t.Helper()
	return globBase(t, filepath.Join(dir, "*.sql"))
}

func globBase(t *testing.T, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	require.NoError(t, err)
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	return names
}
