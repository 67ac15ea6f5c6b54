package localpg

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// envVars are the variables naming an existing server, in order of precedence.
var envVars = []string{"DATABASE_URL", "TEST_DATABASE_URL"}

// startEnv returns the server named by the first non-empty variable of
// envVars after checking that it answers, or a reason when none is set.
func startEnv(ctx context.Context) (*Server, string, error) {
	for _, name := range envVars {
		raw := os.Getenv(name)
		if raw == "" {
			continue
		}
		cfg, err := pgconn.ParseConfig(raw)
		if err != nil {
			// pgx's message may quote the string, password included.
			return nil, "", fmt.Errorf("localpg: %s is not a valid connection string "+
				"(want postgres://user:password@host:port/dbname?sslmode=disable)", name)
		}
		if err := ping(ctx, raw); err != nil {
			return nil, "", redact(fmt.Errorf("localpg: connect to the server of %s: %w", name, err), cfg.Password)
		}
		return &Server{source: SourceEnv, url: raw}, "", nil
	}
	return nil, strings.Join(envVars, " and ") + " unset", nil
}

// ping opens one connection to url and closes it.
func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	conn, err := pgconn.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// redactedError prints its message with a password masked and still unwraps
// to the original error.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact masks password in err's message.
func redact(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), password, "xxxxx"), err: err}
}
