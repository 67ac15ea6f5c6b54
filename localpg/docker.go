package localpg

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// dockerProbeTimeout bounds the check that a Docker engine answers.
const dockerProbeTimeout = 3 * time.Second

// startDocker runs a PostgreSQL container, or returns a reason when no Docker
// engine answers.
func startDocker(ctx context.Context, cfg *config) (*Server, string, error) {
	if reason := probeDocker(ctx); reason != "" {
		return nil, reason, nil
	}
	const password = "postgres"
	args := []string{}
	for _, s := range cfg.serverSettings() {
		args = append(args, "-c", s[0]+"="+s[1])
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(slogPrintf{cfg.logger}),
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword(password),
		tcpostgres.BasicWaitStrategies(),
		testcontainers.WithCmdArgs(args...),
		testcontainers.WithTmpfs(map[string]string{"/var/lib/postgresql/data": "rw"}),
	}
	if cfg.port != 0 {
		port := strconv.Itoa(cfg.port)
		opts = append(opts, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				network.MustParsePort("5432/tcp"): {{HostPort: port}},
			}
		}))
	}
	ctr, err := tcpostgres.Run(ctx, cfg.image, opts...)
	if err != nil {
		if ctr != nil {
			_ = ctr.Terminate(context.WithoutCancel(ctx))
		}
		return nil, "", fmt.Errorf("localpg: start container %s: %w", cfg.image, err)
	}
	host, err := ctr.Host(ctx)
	if err == nil {
		var p network.Port
		p, err = ctr.MappedPort(ctx, "5432/tcp")
		if err == nil {
			host = net.JoinHostPort(host, p.Port())
		}
	}
	if err != nil {
		_ = ctr.Terminate(context.WithoutCancel(ctx))
		return nil, "", fmt.Errorf("localpg: find the port of container %s: %w", cfg.image, err)
	}
	u := &url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", password),
		Host:     host,
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	if err := waitReady(ctx, u.String(), nil); err != nil {
		_ = ctr.Terminate(context.WithoutCancel(ctx))
		return nil, "", fmt.Errorf("localpg: container %s: %w", cfg.image, err)
	}
	remove := func(ctx context.Context) error { return ctr.Terminate(ctx) }
	return &Server{source: SourceDocker, url: u.String(), remove: remove}, "", nil
}

// probeDocker returns "" when a Docker engine answers, else why not. It looks
// for a configured or well-known endpoint before asking testcontainers, whose
// probe runs under a timeout, so that a machine without an engine is not
// slowed down and sees no panic or log noise.
func probeDocker(ctx context.Context) (reason string) {
	if !dockerConfigured() {
		return "no Docker engine (DOCKER_HOST unset, no socket at /var/run/docker.sock)"
	}
	ctx, cancel := context.WithTimeout(ctx, dockerProbeTimeout)
	defer cancel()
	done := make(chan string, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Sprint("Docker engine unusable: ", r)
			}
		}()
		p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(nopPrintf{}))
		if err == nil {
			err = p.Health(ctx) // closes p
		}
		if err != nil {
			msg, _, _ := strings.Cut(err.Error(), "\n")
			done <- "no Docker engine answered: " + msg
			return
		}
		done <- ""
	}()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		return "no Docker engine answered within " + dockerProbeTimeout.String()
	}
}

// dockerConfigured reports whether anything points at a Docker engine: the
// variables and files testcontainers reads, or a well-known socket.
func dockerConfigured() bool {
	for _, v := range []string{"DOCKER_HOST", "TESTCONTAINERS_HOST_OVERRIDE", "DOCKER_CONTEXT"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	home, _ := os.UserHomeDir()
	paths := []string{"/var/run/docker.sock", "/run/docker.sock"}
	if home != "" {
		paths = append(paths,
			filepath.Join(home, ".testcontainers.properties"),
			filepath.Join(home, ".docker", "run", "docker.sock"),
			filepath.Join(home, ".docker", "desktop", "docker.sock"),
			filepath.Join(home, ".colima", "default", "docker.sock"),
		)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		paths = append(paths, filepath.Join(d, "docker.sock"))
	}
	paths = append(paths, filepath.Join("/run/user", strconv.Itoa(os.Getuid()), "docker.sock"))
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return dockerContextSet(home)
}

// dockerContextSet reports whether the docker CLI config selects a context
// other than the default one (which is the socket checked above).
func dockerContextSet(home string) bool {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		if home == "" {
			return false
		}
		dir = filepath.Join(home, ".docker")
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return false
	}
	var conf struct {
		CurrentContext string `json:"currentContext"`
	}
	if json.Unmarshal(b, &conf) != nil {
		return false
	}
	return conf.CurrentContext != "" && conf.CurrentContext != "default"
}

// slogPrintf adapts testcontainers' logger to slog at debug level.
type slogPrintf struct{ l *slog.Logger }

func (s slogPrintf) Printf(format string, v ...any) {
	s.l.Debug("localpg: testcontainers: " + fmt.Sprintf(format, v...))
}

// nopPrintf discards testcontainers' logs.
type nopPrintf struct{}

func (nopPrintf) Printf(string, ...any) {}
