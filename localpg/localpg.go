// Package localpg gives a program or a test suite a PostgreSQL server to talk
// to, with nothing to set up by hand.
//
// [Start] resolves a server in this order:
//
//  1. DATABASE_URL, then TEST_DATABASE_URL: that server is used as is (skipped
//     when [WithPort] is given). [Server.Stop] then leaves it alone.
//  2. A Docker engine, through testcontainers-go (postgres:15-alpine). The engine
//     is probed with a short timeout first, so a machine without one falls
//     through at once; a container that fails to start (no image offline,
//     say) does too. testcontainers' reaper removes the container if the
//     process dies.
//  3. PostgreSQL server binaries (initdb and postgres) on PATH or under
//     /usr/lib/postgresql/*/bin and similar directories; the newest version
//     wins. A fresh cluster is initialised in a temporary directory (copied
//     from a cluster cached once per machine and version), tuned for tests
//     (fsync off, 200 connections) and started on a free 127.0.0.1 port. When
//     the process runs as root the server runs as the "postgres" user.
//  4. Otherwise an error wrapping [ErrNoServer] says what to install or set.
//
// [WithBinDir], or the variable LOCALPG_BIN_DIR ([BinDirEnv]), chooses the
// installation instead of the search of step 3, and skips step 2: that is how
// a test suite runs on a given PostgreSQL version (tools/pgfetch.sh fetches
// versions 15 to 18).
//
// A server started from binaries leaves nothing behind: [Server.Stop] shuts
// it down and removes its directory, and a watchdog process does the same if
// the process exits or is killed without calling Stop. SIGINT and SIGTERM stop
// the servers first, then take their normal effect (see [WithoutSignalHandler]).
// [WithSources] restricts or reorders the sources.
//
// A server started from binaries can have streaming hot standbys
// ([Server.StartStandby]): base backups taken with the same installation's
// pg_basebackup, each following the primary through a replication slot, to
// test read replicas, replication lag ([ApplyDelay]), a replica going away
// ([Standby.Halt]) and failover ([Standby.Promote]).
package localpg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cortexerp/datalayer/internal/secret"
)

// Source says where a [Server] came from.
type Source int

const (
	// SourceEnv is a server named by DATABASE_URL or TEST_DATABASE_URL.
	SourceEnv Source = iota + 1
	// SourceDocker is a container started through testcontainers-go.
	SourceDocker
	// SourceBinaries is a postmaster started from local PostgreSQL binaries.
	SourceBinaries
)

// String returns "env", "docker" or "binaries".
func (s Source) String() string {
	switch s {
	case SourceEnv:
		return "env"
	case SourceDocker:
		return "docker"
	case SourceBinaries:
		return "binaries"
	default:
		return fmt.Sprintf("Source(%d)", int(s))
	}
}

// Server is a running PostgreSQL server. Its methods are safe for concurrent
// use; Halt, Resume and Stop are serialised.
type Server struct {
	source Source
	url    string // admin URL; may carry a password (env, docker)

	mu      sync.Mutex
	stopped bool
	pm      *postmaster                     // SourceBinaries
	remove  func(ctx context.Context) error // SourceDocker

	standbys   []*Standby // running, oldest first (StartStandby)
	standbySeq int        // standbys ever started: names their slots
}

// Start returns a server to talk to, resolved as the package documentation
// describes. ctx bounds the start-up only; the server runs until [Server.Stop]
// or the end of the process.
func Start(ctx context.Context, opts ...Option) (*Server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	var tried []string
	for _, src := range cfg.sources {
		var (
			s      *Server
			reason string
		)
		switch src {
		case SourceEnv:
			if cfg.port != 0 {
				reason = "skipped for WithPort"
				break
			}
			s, reason, err = startEnv(ctx, cfg.envVars)
		case SourceDocker:
			if cfg.binDir != "" {
				reason = "skipped for " + cfg.binDirFrom
				break
			}
			s, reason, err = startDocker(ctx, cfg)
			if err != nil && ctx.Err() == nil { // e.g. no image offline: try the next source
				cfg.logger.Debug("localpg: Docker failed", "err", err)
				reason, err = err.Error(), nil
			}
		case SourceBinaries:
			s, reason, err = startBinaries(ctx, cfg)
		}
		if err != nil {
			return nil, err
		}
		if s != nil {
			cfg.logger.Debug("localpg: server ready", "source", src, "server", s.String())
			return s, nil
		}
		tried = append(tried, src.String()+": "+reason)
	}
	return nil, fmt.Errorf("%w (%s); set DATABASE_URL or TEST_DATABASE_URL to a running server, "+
		"start a Docker engine, or install the PostgreSQL server binaries "+
		"(initdb and postgres, e.g. apt-get install postgresql or brew install postgresql@15) "+
		"on PATH or under /usr/lib/postgresql/<version>/bin",
		ErrNoServer, strings.Join(tried, "; "))
}

// URL returns the connection string of the server's "postgres" database as a
// superuser, e.g. postgres://postgres@127.0.0.1:54321/postgres?sslmode=disable.
// For SourceEnv it is the variable's value, unchanged. It may carry a password:
// do not log it.
func (s *Server) URL() string { return s.url }

// URLFor returns the connection string of database dbname on the same server
// with the same credentials.
func (s *Server) URLFor(dbname string) string {
	u, err := url.Parse(s.url)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// A keyword/value string: a later dbname overrides an earlier one.
		return s.url + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(dbname) + "'"
	}
	u.Path = "/" + dbname
	u.RawPath = ""
	return u.String()
}

// Source reports where the server came from.
func (s *Server) Source() Source { return s.source }

// String describes the server without credentials, e.g.
// "binaries postgres://postgres@127.0.0.1:54321/postgres?sslmode=disable".
func (s *Server) String() string {
	return s.source.String() + " " + secret.Redact(s.url)
}

// GoString is String, so that %#v prints no password either.
func (s *Server) GoString() string { return "localpg.Server(" + s.String() + ")" }

// Halt stops the postmaster with a fast shutdown, keeping its data directory
// and port, so that a test can watch a server go away and come back with
// [Server.Resume]. Only a SourceBinaries server can halt; the others return
// [ErrNotSupported].
func (s *Server) Halt(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pm == nil {
		return fmt.Errorf("halt %s server: %w", s.source, ErrNotSupported)
	}
	if s.stopped {
		return fmt.Errorf("halt: %w", ErrStopped)
	}
	return s.pm.halt(ctx)
}

// Resume starts a halted server again on the same port and waits until it
// accepts connections (bounded by ctx). Resuming a running server does
// nothing. Only a SourceBinaries server can resume; the others return
// [ErrNotSupported].
func (s *Server) Resume(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pm == nil {
		return fmt.Errorf("resume %s server: %w", s.source, ErrNotSupported)
	}
	if s.stopped {
		return fmt.Errorf("resume: %w", ErrStopped)
	}
	return s.pm.resume(ctx)
}

// Stop shuts the server down and removes everything it created: the
// postmaster and its directory (binaries) or the container (docker). A server
// from the environment is left running. Stop is safe to call more than once;
// ctx bounds the wait for a fast shutdown, after which the server is killed
// (a done ctx, as in a test's Cleanup, kills it at once).
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	switch {
	case s.pm != nil:
		untrack(s)
		err := s.stopStandbysLocked(ctx)
		return errors.Join(err, s.pm.stop(ctx))
	case s.remove != nil:
		if err := s.remove(ctx); err != nil {
			return fmt.Errorf("terminate container: %w", err)
		}
	}
	return nil
}

// readyTimeout bounds one connection attempt while waiting for a server.
const readyTimeout = 2 * time.Second
