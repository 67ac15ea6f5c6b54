package localpg

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
)

// Option configures [Start]. Options are immutable: share them freely.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	port       int
	sources    []Source
	envVars    []string // the variables SourceEnv reads, in order
	binDirs    []string
	binDirsSet bool   // WithBinDirs given
	binDir     string // the installation to run: WithBinDir or $LOCALPG_BIN_DIR
	binDirFrom string // "WithBinDir" or BinDirEnv; "" when binDir is unset
	cacheDir   string
	image      string
	settings   [][2]string
	logger     *slog.Logger
	signals    bool
}

// defaultBinDirs are the glob patterns searched for PostgreSQL binaries after PATH.
var defaultBinDirs = []string{
	"/usr/lib/postgresql/*/bin",         // Debian, Ubuntu
	"/usr/pgsql-*/bin",                  // RHEL, Fedora (PGDG)
	"/usr/local/pgsql/bin",              // built from source
	"/opt/homebrew/opt/postgresql*/bin", // Homebrew, Apple silicon
	"/usr/local/opt/postgresql*/bin",    // Homebrew, Intel
	"/Applications/Postgres.app/Contents/Versions/*/bin",
}

// DefaultImage is the Docker image used for SourceDocker.
const DefaultImage = "postgres:15-alpine"

// BinDirEnv names the variable that chooses the PostgreSQL installation to
// run, as [WithBinDir] does, when neither WithBinDir nor [WithBinDirs] is
// given and SourceBinaries is among the sources. Set it to run a whole test
// suite (every Start, dbtest's shared server included) on another PostgreSQL
// version: LOCALPG_BIN_DIR=$(tools/pgfetch.sh 17) go test ./...
const BinDirEnv = "LOCALPG_BIN_DIR"

func newConfig(opts []Option) (*config, error) {
	c := &config{
		sources: []Source{SourceEnv, SourceDocker, SourceBinaries},
		envVars: defaultEnvVars,
		binDirs: defaultBinDirs,
		image:   DefaultImage,
		logger:  slog.New(slog.DiscardHandler),
		signals: true,
	}
	if dir, err := os.UserCacheDir(); err == nil {
		c.cacheDir = filepath.Join(dir, "datalayer", "localpg")
	}
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, errors.New("localpg: option must not be nil"))
			continue
		}
		if err := o.apply(c); err != nil {
			errs = append(errs, err)
		}
	}
	hasBinaries := slices.Contains(c.sources, SourceBinaries)
	switch {
	case c.binDirFrom == withBinDir && c.binDirsSet:
		errs = append(errs, errors.New("localpg: WithBinDir and WithBinDirs exclude each other: "+
			"name one installation or the patterns to search, not both"))
	case c.binDirFrom == withBinDir && !hasBinaries:
		errs = append(errs, errors.New("localpg: WithBinDir needs SourceBinaries among WithSources"))
	case c.binDirFrom == "" && !c.binDirsSet && hasBinaries && os.Getenv(BinDirEnv) != "":
		dir, err := filepath.Abs(os.Getenv(BinDirEnv))
		if err != nil {
			errs = append(errs, fmt.Errorf("localpg: %s: %w", BinDirEnv, err))
			break
		}
		c.binDir, c.binDirFrom = dir, BinDirEnv
	}
	return c, errors.Join(errs...)
}

const withBinDir = "WithBinDir"

// binDirOrigin names where binDir came from, for messages:
// `WithBinDir("/opt/pg17/bin")` or `LOCALPG_BIN_DIR=/opt/pg17/bin`.
func (c *config) binDirOrigin() string {
	if c.binDirFrom == withBinDir {
		return fmt.Sprintf("%s(%q)", withBinDir, c.binDir)
	}
	return c.binDirFrom + "=" + c.binDir
}

// WithPort makes Start run its own server (never the one of DATABASE_URL or
// TEST_DATABASE_URL) listening on 127.0.0.1:port. Without it a free port is
// chosen.
func WithPort(port int) Option {
	return optionFunc(func(c *config) error {
		if port < 1 || port > 65535 {
			return fmt.Errorf("localpg: WithPort(%d): port must be within 1-65535", port)
		}
		c.port = port
		return nil
	})
}

// WithSources restricts Start to the given sources, tried in the given order
// (default: SourceEnv, SourceDocker, SourceBinaries).
func WithSources(sources ...Source) Option {
	return optionFunc(func(c *config) error {
		if len(sources) == 0 {
			return errors.New("localpg: WithSources: name at least one source")
		}
		for _, s := range sources {
			if s < SourceEnv || s > SourceBinaries {
				return fmt.Errorf("localpg: WithSources: unknown source %d", int(s))
			}
		}
		c.sources = slices.Clone(sources)
		return nil
	})
}

// WithEnvVars makes SourceEnv read the given variables, in order, instead
// of DATABASE_URL and TEST_DATABASE_URL: dbtest reads DBTEST_DATABASE_URL, a
// server the user named for tests, and never DATABASE_URL.
func WithEnvVars(names ...string) Option {
	return optionFunc(func(c *config) error {
		if len(names) == 0 {
			return errors.New("localpg: WithEnvVars: name at least one variable")
		}
		for _, n := range names {
			if n == "" {
				return errors.New("localpg: WithEnvVars: a variable name must not be empty")
			}
		}
		c.envVars = slices.Clone(names)
		return nil
	})
}

// WithBinDirs replaces the glob patterns of directories searched for initdb
// and postgres after PATH (default: /usr/lib/postgresql/*/bin and the usual
// locations of the PGDG, Homebrew and Postgres.app packages). It makes Start
// ignore $LOCALPG_BIN_DIR ([BinDirEnv]).
func WithBinDirs(patterns ...string) Option {
	return optionFunc(func(c *config) error {
		for _, p := range patterns {
			if _, err := filepath.Match(p, ""); err != nil {
				return fmt.Errorf("localpg: WithBinDirs: bad pattern %q: %w", p, err)
			}
		}
		c.binDirs, c.binDirsSet = slices.Clone(patterns), true
		return nil
	})
}

// WithBinDir runs the PostgreSQL installation in dir (a directory holding
// initdb and postgres, or one whose bin/ holds them) instead of searching PATH
// and the [WithBinDirs] patterns, so that a program or a test picks the
// version it runs on. A server is then never started from Docker, whose
// image could not honour the choice; DATABASE_URL and TEST_DATABASE_URL still
// come first as always (add WithSources(SourceBinaries) to rule them out).
// Without this option, $LOCALPG_BIN_DIR ([BinDirEnv]) does the same.
//
// A self-contained build, whose ../lib holds the shared libraries its
// binaries need (such as those tools/pgfetch.sh fetches), runs with that
// directory first in LD_LIBRARY_PATH. Start fails, naming the option, when
// dir holds no installation, when its postgres does not run, or, as root,
// when user postgres (who then runs the server) cannot run it. WithBinDir
// excludes [WithBinDirs] and needs SourceBinaries among [WithSources].
func WithBinDir(dir string) Option {
	return optionFunc(func(c *config) error {
		if dir == "" {
			return errors.New("localpg: WithBinDir: dir must not be empty")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("localpg: WithBinDir(%q): %w", dir, err)
		}
		c.binDir, c.binDirFrom = abs, withBinDir
		return nil
	})
}

// WithCacheDir sets where an initialised cluster is cached per PostgreSQL
// version, so that later starts copy it instead of running initdb (default:
// os.UserCacheDir()/datalayer/localpg). An empty dir disables the cache.
func WithCacheDir(dir string) Option {
	return optionFunc(func(c *config) error {
		c.cacheDir = dir
		return nil
	})
}

// WithImage sets the Docker image of SourceDocker (default [DefaultImage]).
func WithImage(image string) Option {
	return optionFunc(func(c *config) error {
		if image == "" {
			return errors.New("localpg: WithImage: image must not be empty")
		}
		c.image = image
		return nil
	})
}

var settingName = regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)

// WithSetting passes a server setting (postgres -c name=value) to a server
// that localpg starts, overriding its defaults.
func WithSetting(name, value string) Option {
	return optionFunc(func(c *config) error {
		if !settingName.MatchString(name) {
			return fmt.Errorf("localpg: WithSetting: bad setting name %q", name)
		}
		c.settings = append(c.settings, [2]string{name, value})
		return nil
	})
}

// WithLogger logs start-up and shutdown at debug level (default: no logging).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("localpg: WithLogger: logger must not be nil")
		}
		c.logger = l
		return nil
	})
}

// WithoutSignalHandler leaves SIGINT and SIGTERM alone, for a program that
// handles them itself and calls [Server.Stop]. The watchdog still removes the
// server when the process exits.
func WithoutSignalHandler() Option {
	return optionFunc(func(c *config) error {
		c.signals = false
		return nil
	})
}

// serverSettings are the postgres -c settings of a server localpg starts.
func (c *config) serverSettings() [][2]string {
	s := [][2]string{
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"full_page_writes", "off"},
		{"max_connections", "200"},
		{"shared_buffers", "64MB"},
	}
	return append(s, c.settings...)
}
