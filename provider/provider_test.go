package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/localpg"
	"github.com/cortexerp/datalayer/provider"
)

// fast makes connection failures quick to give up on.
func fast(environ map[string]string, name string) map[string]string {
	p := "DB_" + strings.ToUpper(name) + "_"
	for k, v := range map[string]string{
		"CONNECT_TIMEOUT":     "2s",
		"CONNECT_RETRIES":     "2",
		"CONNECT_BACKOFF":     "20ms",
		"CONNECT_BACKOFF_MAX": "50ms",
	} {
		if _, ok := environ[p+k]; !ok {
			environ[p+k] = v
		}
	}
	return environ
}

// newProvider opens a provider and closes it at the end of the test.
func newProvider(t *testing.T, environ map[string]string, opts ...provider.Option) *provider.Provider {
	t.Helper()
	base := []provider.Option{provider.WithLogger(slog.New(slog.DiscardHandler)), provider.WithEnvironment(environ)}
	p, err := provider.New(t.Context(), append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(context.WithoutCancel(t.Context()))) })
	return p
}

func TestNewOpensMainAndAnalyticsFromTheEnvironment(t *testing.T) {
	t.Parallel()
	mainURL, mainPW := databaseURL(t)
	analyticsURL, analyticsPW := databaseURL(t)
	logger, logs := newLogger()
	p := newProvider(t, fast(fast(map[string]string{
		"DB_NAMES":                        "main,analytics",
		"DATABASE_URL":                    mainURL,
		"DB_ANALYTICS_URL":                analyticsURL,
		"DB_ANALYTICS_REPLICA_URLS":       analyticsURL,
		"DB_ANALYTICS_STATEMENT_TIMEOUT":  "1500ms",
		"DB_ANALYTICS_LOCK_TIMEOUT":       "2s",
		"DB_ANALYTICS_IDLE_IN_TX_TIMEOUT": "1m",
		"DB_ANALYTICS_APPLICATION_NAME":   "provider-test",
		"DB_ANALYTICS_EXEC_MODE":          "simple_protocol",
		"DB_ANALYTICS_POOL_MAX_CONNS":     "3",
		"DB_ANALYTICS_TYPO_MAX_CONNS":     "3",
		"DB_LOG_LEVEL":                    "info",
	}, "main"), "analytics"), provider.WithLogger(logger))
	ctx := t.Context()

	require.Equal(t, []string{"main", "analytics"}, p.Names())
	require.Equal(t, "main", p.Main().Name())
	analytics, err := p.DB("Analytics")
	require.NoError(t, err)
	require.Equal(t, "analytics", analytics.Name())

	_, err = p.DB("billing")
	require.ErrorIs(t, err, provider.ErrUnknownDatabase)
	require.EqualError(t, err, `unknown database "billing": DB_NAMES has main, analytics`)

	dbName := func(pool interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) string {
		var name string
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_database()").Scan(&name))
		return name
	}
	require.Equal(t, strings.TrimPrefix(mustPath(t, mainURL), "/"), dbName(p.Main().Pool()))
	require.Equal(t, strings.TrimPrefix(mustPath(t, analyticsURL), "/"), dbName(analytics.Pool()))
	require.Len(t, analytics.Replicas(), 1)
	require.Equal(t, dbName(analytics.Pool()), dbName(analytics.Replicas()[0]))
	require.Empty(t, p.Main().Replicas())

	// The database's session settings are the pool's runtime parameters.
	settings := map[string]string{}
	rows, err := analytics.Pool().Query(ctx, `SELECT name, setting FROM pg_settings
		WHERE name IN ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'application_name')`)
	require.NoError(t, err)
	for rows.Next() {
		var name, setting string
		require.NoError(t, rows.Scan(&name, &setting))
		settings[name] = setting
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]string{
		"statement_timeout":                   "1500",
		"lock_timeout":                        "2000",
		"idle_in_transaction_session_timeout": "60000",
		"application_name":                    "provider-test",
	}, settings)
	require.Equal(t, pgx.QueryExecModeSimpleProtocol, analytics.Pool().Config().ConnConfig.DefaultQueryExecMode)
	require.Equal(t, int32(3), analytics.Pool().Config().MaxConns)
	var mainTimeout string
	require.NoError(t, p.Main().Pool().QueryRow(ctx, "SHOW statement_timeout").Scan(&mainTimeout))
	require.Equal(t, "0", mainTimeout, "main keeps the server's setting")

	// Health: every pool, as JSON, 200.
	rec := httptest.NewRecorder()
	p.HealthHandler().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var rep provider.Report
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rep))
	require.True(t, rep.OK)
	require.Len(t, rep.Checks, 3)
	for i, want := range []struct {
		db, role string
		replica  int
	}{{"main", "primary", -1}, {"analytics", "primary", -1}, {"analytics", "replica", 0}} {
		c := rep.Checks[i]
		require.Equal(t, want.db, c.Database)
		require.Equal(t, want.role, c.Role)
		require.Equal(t, want.replica, c.Replica)
		require.True(t, c.OK, c.Error)
		require.Empty(t, c.Error)
		require.NotEmpty(t, c.ServerVersion)
		require.False(t, c.InRecovery)
		require.Positive(t, c.LatencyMS)
		require.Positive(t, c.Pool.MaxConns)
		require.NotContains(t, c.Target, ":"+mainPW+"@")
	}
	require.Contains(t, logs.String(), `"var":"DB_ANALYTICS_TYPO_MAX_CONNS","reason":"not a variable of database analytics"`)

	for _, out := range []string{rec.Body.String(), logs.String(), fmt.Sprintf("%+v %#v %v", p, p.Main(), analytics)} {
		require.NotContains(t, out, mainPW)
		require.NotContains(t, out, analyticsPW)
	}
}

func mustPath(t *testing.T, raw string) string {
	t.Helper()
	i := strings.Index(raw, "://")
	rest := raw[i+3:]
	rest = rest[strings.Index(rest, "/"):]
	path, _, _ := strings.Cut(rest, "?")
	return path
}

func TestNewGivesUpOnAnUnreachableServerWithinItsBudget(t *testing.T) {
	t.Parallel()
	logger, logs := newLogger()
	port := freePort(t)
	start := time.Now()
	_, err := provider.New(t.Context(), provider.WithLogger(logger), provider.WithEnvironment(map[string]string{
		"DB_MAIN_HOST":                "127.0.0.1",
		"DB_MAIN_PORT":                strconv.Itoa(port),
		"DB_MAIN_PASSWORD":            testPassword,
		"DB_MAIN_CONNECT_TIMEOUT":     "500ms",
		"DB_MAIN_CONNECT_RETRIES":     "3",
		"DB_MAIN_CONNECT_BACKOFF":     "20ms",
		"DB_MAIN_CONNECT_BACKOFF_MAX": "40ms",
	}))
	elapsed := time.Since(start)
	require.Error(t, err)
	require.Less(t, elapsed, 3*time.Second)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.Contains(t, err.Error(), fmt.Sprintf(`connect to database "main" (postgres@127.0.0.1:%d/postgres): gave up after 4 attempts in `, port))
	require.Contains(t, err.Error(), "check DB_MAIN_HOST and DB_MAIN_PORT, or raise DB_MAIN_CONNECT_RETRIES")

	retries := withMsg(logs.records(t), "provider: database not reachable, retrying")
	require.Len(t, retries, 3, "each retried attempt is logged")
	for i, r := range retries {
		require.Equal(t, float64(i+1), r["attempt"])
		require.Equal(t, float64(4), r["max_attempts"])
		require.Equal(t, "main", r["db"])
		require.Contains(t, r["err"], "connection refused")
	}
	require.NotContains(t, err.Error(), testPassword)
	require.NotContains(t, logs.String(), testPassword)
}

func TestNewDoesNotRetryAPermanentFailure(t *testing.T) {
	t.Parallel()
	raw, pw := databaseURL(t)
	missing := strings.Replace(raw, mustPath(t, raw), "/"+uniqueName("missing"), 1)
	logger, logs := newLogger()
	start := time.Now()
	_, err := provider.New(t.Context(), provider.WithLogger(logger), provider.WithEnvironment(map[string]string{
		"DB_NAMES":                     "reporting",
		"DB_REPORTING_URL":             missing,
		"DB_REPORTING_CONNECT_RETRIES": "5",
		"DB_REPORTING_CONNECT_BACKOFF": "5s",
	}))
	require.Error(t, err)
	require.Less(t, time.Since(start), 4*time.Second, "no backoff wait (a retry would wait 5s)")
	require.Contains(t, err.Error(), `connect to database "reporting"`)
	require.Contains(t, err.Error(), "(SQLSTATE 3D000) (check the database name (DB_REPORTING_URL))")
	require.Empty(t, withMsg(logs.records(t), "provider: database not reachable, retrying"))
	require.NotContains(t, err.Error(), pw)
}

func TestNewWaitsForAServerThatStartsLate(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	logger, logs := newLogger()
	type result struct {
		p   *provider.Provider
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := provider.New(t.Context(), provider.WithLogger(logger), provider.WithEnvironment(map[string]string{
			"DB_MAIN_HOST":                "127.0.0.1",
			"DB_MAIN_PORT":                strconv.Itoa(port),
			"DB_MAIN_CONNECT_TIMEOUT":     "2s",
			"DB_MAIN_CONNECT_RETRIES":     "200",
			"DB_MAIN_CONNECT_BACKOFF":     "50ms",
			"DB_MAIN_CONNECT_BACKOFF_MAX": "200ms",
		}))
		done <- result{p, err}
	}()
	// Let New fail at least once before there is a server.
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "provider: database not reachable, retrying")
	}, 10*time.Second, 10*time.Millisecond)

	srv, err := localpg.Start(t.Context(), localpg.WithPort(port))
	if errors.Is(err, localpg.ErrNoServer) {
		t.Skipf("no PostgreSQL to start on port %d: %v", port, err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Stop(context.WithoutCancel(t.Context()))) })

	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("New did not return after the server started")
	}
	require.NoError(t, r.err)
	t.Cleanup(func() { require.NoError(t, r.p.Close(context.WithoutCancel(t.Context()))) })
	var one int
	require.NoError(t, r.p.Main().Pool().QueryRow(t.Context(), "SELECT 1").Scan(&one))
	require.Equal(t, 1, one)
}

func TestHealthReportsAStoppedServerAndItsRecovery(t *testing.T) {
	t.Parallel()
	srv, err := localpg.Start(t.Context(), localpg.WithPort(freePort(t)))
	if errors.Is(err, localpg.ErrNoServer) {
		t.Skipf("no PostgreSQL to start: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Stop(context.WithoutCancel(t.Context()))) })
	if srv.Source() != localpg.SourceBinaries {
		t.Skipf("halting a server needs one started from binaries; this one is from %s", srv.Source())
	}
	p := newProvider(t, fast(map[string]string{
		"DB_MAIN_URL":             srv.URL(),
		"DB_MAIN_CONNECT_TIMEOUT": "1s",
	}, "main"))
	ctx := t.Context()
	handler := p.HealthHandler()
	probe := func() (int, provider.Report) {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/readyz", nil))
		var rep provider.Report
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rep))
		return rec.Code, rep
	}

	code, rep := probe()
	require.Equal(t, http.StatusOK, code)
	require.True(t, rep.Checks[0].OK)

	require.NoError(t, srv.Halt(ctx))
	start := time.Now()
	code, rep = probe()
	require.Less(t, time.Since(start), 3*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.False(t, rep.OK)
	require.False(t, rep.Checks[0].OK)
	require.Contains(t, rep.Checks[0].Error, "connect")
	require.Empty(t, rep.Checks[0].ServerVersion)

	require.NoError(t, srv.Resume(ctx))
	code, rep = probe()
	require.Equal(t, http.StatusOK, code, rep.Checks[0].Error)
	require.True(t, rep.OK)
	require.NotEmpty(t, rep.Checks[0].ServerVersion)
}

func TestCloseWaitsForInFlightWork(t *testing.T) {
	t.Parallel()
	raw, _ := databaseURL(t)
	exec(t, raw, "CREATE TABLE done (id int)")
	p, err := provider.New(t.Context(), provider.WithLogger(slog.New(slog.DiscardHandler)),
		provider.WithEnvironment(fast(map[string]string{"DB_MAIN_URL": raw}, "main")))
	require.NoError(t, err)
	ctx := t.Context()
	pool := p.Main().Pool()

	acquired := make(chan struct{})
	workErr := make(chan error, 1)
	go func() {
		workErr <- pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			close(acquired)
			_, err := tx.Exec(ctx, "SELECT pg_sleep(0.5); INSERT INTO done VALUES (1)")
			return err
		})
	}()
	<-acquired

	closeStart := time.Now()
	closeErr := make(chan error, 1)
	go func() { closeErr <- p.Close(ctx) }()

	// New work is refused as soon as Close has begun...
	require.Eventually(t, func() bool {
		_, err := pool.Exec(ctx, "SELECT 1")
		return errors.Is(err, provider.ErrClosed)
	}, 5*time.Second, 5*time.Millisecond)
	rep := p.Health(ctx)
	require.False(t, rep.OK)
	require.Contains(t, rep.Checks[0].Error, "provider is closed")

	// ...while the work in flight finishes and commits.
	require.NoError(t, <-workErr)
	require.NoError(t, <-closeErr)
	require.GreaterOrEqual(t, time.Since(closeStart), 300*time.Millisecond)
	require.NoError(t, p.Close(ctx), "a second Close is a no-op")

	conn, err := pgx.Connect(ctx, raw)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM done").Scan(&n))
	require.Equal(t, 1, n)
}

func TestCloseInterruptsWorkWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	raw, _ := databaseURL(t)
	p, err := provider.New(t.Context(), provider.WithLogger(slog.New(slog.DiscardHandler)),
		provider.WithEnvironment(fast(map[string]string{"DB_MAIN_URL": raw}, "main")))
	require.NoError(t, err)
	ctx := t.Context()

	acquired := make(chan struct{})
	workErr := make(chan error, 1)
	go func() {
		conn, err := p.Main().Pool().Acquire(ctx)
		if err != nil {
			workErr <- err
			return
		}
		defer conn.Release()
		close(acquired)
		_, err = conn.Exec(ctx, "SELECT pg_sleep(30)")
		workErr <- err
	}()
	<-acquired

	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = p.Close(cctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, `close pool "main": interrupted 1 connection still in use`)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Error(t, <-workErr)
	require.Equal(t, err, p.Close(ctx), "a second Close returns the first's result")
}

func TestNewClosesWhatItOpenedWhenADatabaseFails(t *testing.T) {
	t.Parallel()
	raw, _ := databaseURL(t)
	app := uniqueName("provider_test")
	_, err := provider.New(t.Context(), provider.WithLogger(slog.New(slog.DiscardHandler)), provider.WithEnvironment(map[string]string{
		"DB_NAMES":                     "main,analytics",
		"DB_MAIN_URL":                  raw,
		"DB_MAIN_POOL_MIN_CONNS":       "2",
		"DB_MAIN_APPLICATION_NAME":     app,
		"DB_ANALYTICS_HOST":            "127.0.0.1",
		"DB_ANALYTICS_PORT":            strconv.Itoa(freePort(t)),
		"DB_ANALYTICS_CONNECT_RETRIES": "1",
		"DB_ANALYTICS_CONNECT_BACKOFF": "10ms",
		"DB_ANALYTICS_CONNECT_TIMEOUT": "1s",
	}))
	require.ErrorContains(t, err, `connect to database "analytics"`)
	require.NotContains(t, err.Error(), `database "main"`, "main connected")

	conn, err := pgx.Connect(t.Context(), raw)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(t.Context()))
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n)
		return err == nil && n == 0
	}, 5*time.Second, 20*time.Millisecond, "main's connections are closed")
}

// TestNewReadsTheProcessEnvironment cannot run in parallel: it sets variables.
func TestNewReadsTheProcessEnvironment(t *testing.T) {
	raw, _ := databaseURL(t)
	unsetDBEnv(t)
	t.Setenv("DB_NAMES", "reporting")
	t.Setenv("DB_REPORTING_URL", raw)
	t.Setenv("DB_REPORTING_APPLICATION_NAME", "from-process-env")
	p, err := provider.New(t.Context(), provider.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close(context.WithoutCancel(t.Context()))) }()
	require.Equal(t, "reporting", p.Main().Name(), "Main is the first database when none is named main")
	var app string
	require.NoError(t, p.Main().Pool().QueryRow(t.Context(), "SHOW application_name").Scan(&app))
	require.Equal(t, "from-process-env", app)
}
