//go:build unix

package localpg_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/localpg"
)

// supportedMajors are the PostgreSQL versions the kit supports; CI runs the
// suites on each (make test-matrix).
var supportedMajors = []int{15, 16, 17, 18}

// installsOf returns the directories holding the binaries of PostgreSQL
// major: Debian's package and the build tools/pgfetch.sh fetched (make pg).
func installsOf(t *testing.T, major int) []string {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join("..", "tools", "pgfetch.sh"), "--dir", strconv.Itoa(major)).Output()
	require.NoError(t, err, "tools/pgfetch.sh --dir %d", major)
	var dirs []string
	for _, d := range []string{filepath.Join("/usr/lib/postgresql", strconv.Itoa(major), "bin"), strings.TrimSpace(string(out))} {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// requireInstallsOf is installsOf, skipping t when there are none, unless
// this is CI, where every supported major must be there.
func requireInstallsOf(t *testing.T, major int) []string {
	t.Helper()
	dirs := installsOf(t, major)
	if len(dirs) == 0 {
		msg := "no PostgreSQL %d here (neither /usr/lib/postgresql/%[1]d/bin nor tools/pgfetch.sh's cache): run make pg MAJOR=%[1]d"
		if os.Getenv("CI") == "true" {
			t.Fatalf(msg, major)
		}
		t.Skipf(msg, major)
	}
	return dirs
}

// serverMajor asks the server at url for server_version_num and returns its major.
func serverMajor(t *testing.T, url string) int {
	t.Helper()
	var num string
	require.NoError(t, connect(t, url).QueryRow(t.Context(), "SHOW server_version_num").Scan(&num))
	n, err := strconv.Atoi(num)
	require.NoError(t, err, "server_version_num %q", num)
	return n / 10000
}

func TestWithBinDirStartsEachSupportedMajor(t *testing.T) {
	t.Parallel()
	cache := t.TempDir() // shared by every start: clusters of different versions must not mix
	var started []string
	for _, major := range supportedMajors {
		t.Run(strconv.Itoa(major), func(t *testing.T) {
			for _, dir := range requireInstallsOf(t, major) {
				s := start(t, binaries, localpg.WithBinDir(dir), localpg.WithCacheDir(cache))
				require.Equal(t, major, serverMajor(t, s.URL()), "server started from %s", dir)
				started = append(started, dir)
			}
		})
	}
	// One cached cluster per installation, each of its own major.
	versions, err := filepath.Glob(filepath.Join(cache, "*", "PG_VERSION"))
	require.NoError(t, err)
	require.Len(t, versions, len(started), "cached clusters %v for installations %v", versions, started)
	for _, v := range versions {
		b, err := os.ReadFile(v)
		require.NoError(t, err)
		name := filepath.Base(filepath.Dir(v)) // "17.10-1a2b3c4d"
		require.True(t, strings.HasPrefix(name, strings.TrimSpace(string(b))+"."), "cluster %s holds PG_VERSION %s", name, b)
	}
}

// TestBinDirEnvChoosesTheInstallation is not parallel: it sets LOCALPG_BIN_DIR.
func TestBinDirEnvChoosesTheInstallation(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("TEST_DATABASE_URL", "")
	major := supportedMajors[len(supportedMajors)-1] // not what the search finds first here
	dir := requireInstallsOf(t, major)[0]
	t.Setenv(localpg.BinDirEnv, filepath.Dir(dir)) // the folder above bin/ will do

	s := start(t) // the default sources: Docker is skipped
	require.Equal(t, localpg.SourceBinaries, s.Source())
	require.Equal(t, major, serverMajor(t, s.URL()))

	t.Run("WithBinDirs overrides it", func(t *testing.T) {
		t.Setenv("PATH", "")
		s, err := localpg.Start(t.Context(), binaries, localpg.WithBinDirs(filepath.Join(t.TempDir(), "*")))
		if err == nil {
			require.NoError(t, s.Stop(t.Context()))
		}
		require.ErrorIs(t, err, localpg.ErrNoServer)
	})
	t.Run("a folder without PostgreSQL is an error naming the variable", func(t *testing.T) {
		empty := t.TempDir()
		t.Setenv(localpg.BinDirEnv, empty)
		_, err := localpg.Start(t.Context())
		require.EqualError(t, err, "localpg: LOCALPG_BIN_DIR="+empty+": no initdb and postgres in "+
			empty+" or "+filepath.Join(empty, "bin"))
	})
}

func TestWithBinDirRejectsConflicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []localpg.Option
		want string
	}{
		{"an empty dir", []localpg.Option{localpg.WithBinDir("")},
			"localpg: WithBinDir: dir must not be empty"},
		{"with WithBinDirs", []localpg.Option{localpg.WithBinDir("/opt/pg"), localpg.WithBinDirs("/usr/lib/postgresql/*/bin")},
			"localpg: WithBinDir and WithBinDirs exclude each other: name one installation or the patterns to search, not both"},
		{"without SourceBinaries", []localpg.Option{localpg.WithSources(localpg.SourceEnv, localpg.SourceDocker), localpg.WithBinDir("/opt/pg")},
			"localpg: WithBinDir needs SourceBinaries among WithSources"},
		{"a folder without PostgreSQL", []localpg.Option{binaries, localpg.WithBinDir("/nonexistent")},
			"localpg: WithBinDir(\"/nonexistent\"): no initdb and postgres in /nonexistent or /nonexistent/bin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := localpg.Start(t.Context(), tc.opts...)
			require.EqualError(t, err, tc.want)
		})
	}
}
