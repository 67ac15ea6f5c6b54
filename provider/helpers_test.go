package provider_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
)

// testPassword is put in URLs that have none: the test servers trust local
// connections, so it is sent nowhere, but it must not leak anywhere either.
const testPassword = "s3cr3t-Pa55w0rd"

// databaseURL returns the URL of a fresh empty database with a password in
// it, and that password: testPassword when the server accepts any (trust
// authentication, as localpg's own servers do), else the URL's own.
func databaseURL(t *testing.T) (string, string) {
	t.Helper()
	raw := dbtest.NewURL(t, dbtest.WithoutMigrations())
	u, err := url.Parse(raw)
	require.NoError(t, err)
	own, _ := u.User.Password()
	u.User = url.UserPassword(u.User.Username(), testPassword)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return raw, own
	}
	require.NoError(t, conn.Close(ctx))
	return u.String(), testPassword
}

// unsetDBEnv unsets, until the test ends, every variable of the process
// environment that provider reads (DATABASE_URL, DB_*), such as a developer's
// DATABASE_URL, so that the test sees only the ones it sets.
func unsetDBEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "DB_") {
			t.Setenv(k, "") // restores the value when the test ends
			require.NoError(t, os.Unsetenv(k))
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// logBuffer collects JSON log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records decodes every log line.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	return out
}

// withMsg keeps the records with the given message.
func withMsg(recs []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// newLogger logs everything, as JSON, into the returned buffer.
func newLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4})), buf
}

// exec runs sql on a connection of its own.
func exec(t *testing.T, connString, sql string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	conn, err := pgx.Connect(ctx, connString)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err)
}

// uniqueName is a fresh identifier for a database or table.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%s", prefix, strings.ReplaceAll(uuid.NewString(), "-", "")[:12])
}
