package localpg

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cortexerp/datalayer/internal/secret"
)

// defaultEnvVars are the variables naming an existing server, in order of
// precedence, unless [WithEnvVars] names others.
var defaultEnvVars = []string{"DATABASE_URL", "TEST_DATABASE_URL"}

// startEnv returns the server named by the first non-empty variable of
// envVars after checking that it answers, or a reason when none is set.
func startEnv(ctx context.Context, envVars []string) (*Server, string, error) {
	for _, name := range envVars {
		raw := os.Getenv(name)
		if raw == "" {
			continue
		}
		// pgx is handed the string without its password, so that none of
		// its errors can quote it.
		cs, err := secret.Parse(raw)
		var cfg *pgconn.Config
		if err == nil {
			cfg, err = pgconn.ParseConfig(cs.WithoutPassword())
			err = secret.Error(err)
		}
		if err != nil {
			return nil, "", fmt.Errorf("localpg: %s is not a valid connection string "+
				"(want postgres://user:password@host:port/dbname?sslmode=disable): %w", name, err)
		}
		if cs.Password != "" {
			cfg.Password = cs.Password
		}
		if err := connect(ctx, cfg); err != nil {
			return nil, "", secret.Error(fmt.Errorf("localpg: connect to the server of %s: %w", name, err))
		}
		return &Server{source: SourceEnv, url: raw}, "", nil
	}
	return nil, strings.Join(envVars, " and ") + " unset", nil
}

// ping opens one connection to url and closes it.
func ping(ctx context.Context, url string) error {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return err
	}
	return connect(ctx, cfg)
}

// connect opens one connection with cfg and closes it.
func connect(ctx context.Context, cfg *pgconn.Config) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
