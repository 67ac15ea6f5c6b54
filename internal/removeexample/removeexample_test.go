package removeexample_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRemoveExampleLeavesAKitThatBuilds clones the repository's HEAD into a
// temporary directory (uncommitted changes are not part of it), runs make
// remove-example there, then make generate, go build ./... and go vet ./...,
// and checks what is gone and what is left. It stops short of make verify
// and make test in the copy (golangci-lint and every test again would take
// minutes more); go vet compiles every test file, which catches a test left
// behind that still needs the example.
func TestRemoveExampleLeavesAKitThatBuilds(t *testing.T) {
	for _, tool := range []string{"git", "make", "bash", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not on PATH; CI=true: make remove-example must be tried", tool)
			}
			t.Skipf("%s is not on PATH: make remove-example cannot be tried here", tool)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()

	root := strings.TrimSpace(run(ctx, t, ".", "git", "rev-parse", "--show-toplevel"))
	repo := filepath.Join(t.TempDir(), "kit")
	run(ctx, t, ".", "git", "clone", "--quiet", "--no-hardlinks", root, repo)

	// A dirty work tree: refused without FORCE=1, nothing removed.
	stray := filepath.Join(repo, "stray.txt")
	require.NoError(t, os.WriteFile(stray, []byte("uncommitted\n"), 0o600))
	out, err := command(ctx, repo, "make", "--no-print-directory", "remove-example")
	require.Error(t, err, "make remove-example on a dirty work tree:\n%s", out)
	require.Contains(t, out, "remove-example: the work tree has uncommitted changes (git status); commit them first, or run make remove-example FORCE=1")
	require.DirExists(t, filepath.Join(repo, "erp"), "a refused run removes nothing")
	require.NoError(t, os.Remove(stray))

	out = run(ctx, t, repo, "make", "--no-print-directory", "remove-example")
	require.Contains(t, out, "remove-example: done")

	for _, gone := range []string{"erp", "cmd/demo", "bench/load_products.go", "integration/usersday_test.go"} {
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

	out = run(ctx, t, repo, "make", "--no-print-directory", "remove-example")
	require.Contains(t, out, "remove-example: nothing to do, the example is already removed", "a second run")

	run(ctx, t, repo, "make", "--no-print-directory", "generate")
	run(ctx, t, repo, "go", "build", "./...")
	run(ctx, t, repo, "go", "vet", "./...")

	// Nothing left depends on the example, test files included.
	for _, pkg := range strings.Fields(run(ctx, t, repo, "go", "list", "-deps", "-test", "./...")) {
		require.False(t, pkg == example || strings.HasPrefix(pkg, example+"/"), "a package left behind depends on %s", pkg)
	}
}

// example is the import path of the example application.
const example = "github.com/cortexerp/datalayer/erp"

// command runs name in dir and returns its combined output.
func command(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// run is command that fails the test on an error.
func run(ctx context.Context, t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := command(ctx, dir, name, args...)
	require.NoError(t, err, "%s %s in %s:\n%s", name, strings.Join(args, " "), dir, out)
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
