package provider_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cortexerp/datalayer/provider"
)

// paramValue is a query parameter that must not show up anywhere by default.
const paramValue = "param-value-4711"

// telemetry captures what a provider reports.
type telemetry struct {
	tp     *sdktrace.TracerProvider
	logs   *logBuffer
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	opts   []provider.Option
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	logger, logs := newLogger()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		require.NoError(t, tp.Shutdown(ctx))
		require.NoError(t, mp.Shutdown(ctx))
	})
	return &telemetry{tp: tp, logs: logs, spans: spans, reader: reader, opts: []provider.Option{
		provider.WithLogger(logger), provider.WithTracerProvider(tp), provider.WithMeterProvider(mp),
	}}
}

// traced returns a ctx with a recording span: otelpgx traces only the
// statements of a traced request.
func (tm *telemetry) traced(t *testing.T) context.Context {
	t.Helper()
	ctx, span := tm.tp.Tracer("provider_test").Start(t.Context(), "request")
	t.Cleanup(func() { span.End() })
	return ctx
}

// spanText flattens every span's name, status, attributes and events.
func (tm *telemetry) spanText() string {
	var b strings.Builder
	for _, s := range tm.spans.GetSpans() {
		fmt.Fprintf(&b, "%s %s %v\n", s.Name, s.Status.Description, s.Attributes)
		for _, e := range s.Events {
			fmt.Fprintf(&b, "  %s %v\n", e.Name, e.Attributes)
		}
	}
	return b.String()
}

// spanWith returns the query span (not the prepare span) whose
// db.query.text is sql.
func (tm *telemetry) spanWith(t *testing.T, sql string) tracetest.SpanStub {
	t.Helper()
	for _, s := range tm.spans.GetSpans() {
		if _, prepare := attr(s, "pgx.prepare_stmt.name"); prepare {
			continue
		}
		for _, a := range s.Attributes {
			if a.Key == "db.query.text" && a.Value.AsString() == sql {
				return s
			}
		}
	}
	t.Fatalf("no span for %q in:\n%s", sql, tm.spanText())
	return tracetest.SpanStub{}
}

func attr(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

// recordWith returns the log records of message msg whose sql is sql.
func recordsWith(recs []map[string]any, msg, sql string) []map[string]any {
	var out []map[string]any
	for _, r := range withMsg(recs, msg) {
		if r["sql"] == sql {
			out = append(out, r)
		}
	}
	return out
}

func TestQueryLogSpansAndMetricsHaveNoSecretsOrParameters(t *testing.T) {
	t.Parallel()
	raw, pw := databaseURL(t)
	tm := newTelemetry(t)
	p := newProvider(t, fast(map[string]string{
		"DB_MAIN_URL":   raw,
		"DB_LOG_LEVEL":  "info",
		"DB_SLOW_QUERY": "0",
	}, "main"), tm.opts...)
	ctx := tm.traced(t)
	pool := p.Main().Pool()

	const okSQL, badSQL = "SELECT $1::text", "SELECT $1::int"
	var got string
	require.NoError(t, pool.QueryRow(ctx, okSQL, paramValue).Scan(&got))
	require.Equal(t, paramValue, got)
	_, err := pool.Exec(ctx, badSQL, paramValue)
	require.ErrorContains(t, err, "invalid input syntax for type integer", "the caller's own error is untouched")

	// slog: the statement, not its parameters.
	recs := tm.logs.records(t)
	ok := recordsWith(recs, "pgx query", okSQL)
	require.Len(t, ok, 1)
	require.Equal(t, "INFO", ok[0]["level"])
	require.Equal(t, "main", ok[0]["db"])
	require.Equal(t, "SELECT 1", ok[0]["commandTag"])
	require.Contains(t, ok[0], "duration")
	require.NotContains(t, ok[0], "args")
	bad := recordsWith(recs, "pgx query", badSQL)
	require.Len(t, bad, 1)
	require.Equal(t, "ERROR", bad[0]["level"])
	require.Contains(t, bad[0]["err"], `invalid input syntax for type integer: "xxxxx" (SQLSTATE 22P02)`)

	// Spans: one per statement, with the SQL and the pool, the error masked.
	okSpan := tm.spanWith(t, okSQL)
	pool1, _ := attr(okSpan, "db.client.connection.pool.name")
	require.Equal(t, "main", pool1.AsString())
	_, hasParams := attr(okSpan, "pgx.query.parameters")
	require.False(t, hasParams)
	badSpan := tm.spanWith(t, badSQL)
	require.Contains(t, badSpan.Status.Description, `invalid input syntax for type integer: "xxxxx"`)
	state, _ := attr(badSpan, "pgx.sql_state")
	require.Equal(t, "22P02", state.AsString(), "the SQLSTATE survives the masking")

	// Metrics: the pool's statistics, named after the pool.
	var rm metricdata.ResourceMetrics
	require.NoError(t, tm.reader.Collect(ctx, &rm))
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "pgxpool.max_connections" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
				if v, _ := dp.Attributes.Value("db.client.connection.pool.name"); v.AsString() == "main" {
					found = true
					require.Equal(t, int64(10), dp.Value)
				}
			}
		}
	}
	require.True(t, found, "pgxpool.max_connections for pool main")

	for name, out := range map[string]string{"logs": tm.logs.String(), "spans": tm.spanText()} {
		require.NotContains(t, out, paramValue, name)
		require.NotContains(t, out, pw, name)
	}
}

func TestSlowQueriesAreLoggedAtWarn(t *testing.T) {
	t.Parallel()
	raw, _ := databaseURL(t)
	tm := newTelemetry(t)
	p := newProvider(t, fast(map[string]string{
		"DB_MAIN_URL":   raw,
		"DB_LOG_LEVEL":  "warn",
		"DB_SLOW_QUERY": "100ms",
	}, "main"), tm.opts[0])
	ctx := t.Context()
	_, err := p.Main().Pool().Exec(ctx, "SELECT 1")
	require.NoError(t, err)
	_, err = p.Main().Pool().Exec(ctx, "SELECT pg_sleep(0.2)")
	require.NoError(t, err)

	recs := withMsg(tm.logs.records(t), "pgx query")
	require.Len(t, recs, 1, "only the slow statement is logged at warn")
	require.Equal(t, "WARN", recs[0]["level"])
	require.Equal(t, "SELECT pg_sleep(0.2)", recs[0]["sql"])
	require.Equal(t, true, recs[0]["slow"])
	require.GreaterOrEqual(t, recs[0]["duration"], float64(100e6))
}

func TestParametersAreRecordedOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	raw, _ := databaseURL(t)
	tm := newTelemetry(t)
	p := newProvider(t, fast(map[string]string{
		"DB_MAIN_URL":   raw,
		"DB_LOG_LEVEL":  "info",
		"DB_LOG_PARAMS": "true",
	}, "main"), tm.opts...)
	ctx := tm.traced(t)
	const sql = "SELECT $1::text"
	var got string
	require.NoError(t, p.Main().Pool().QueryRow(ctx, sql, paramValue).Scan(&got))

	recs := recordsWith(tm.logs.records(t), "pgx query", sql)
	require.Len(t, recs, 1)
	require.Equal(t, []any{paramValue}, recs[0]["args"])
	params, ok := attr(tm.spanWith(t, sql), "pgx.query.parameters")
	require.True(t, ok)
	require.Contains(t, params.String(), paramValue)
}

func TestLogLevelNoneLogsNothing(t *testing.T) {
	t.Parallel()
	raw, _ := databaseURL(t)
	logger, logs := newLogger()
	p := newProvider(t, fast(map[string]string{
		"DB_MAIN_URL":   raw,
		"DB_LOG_LEVEL":  "none",
		"DB_SLOW_QUERY": "1ns",
	}, "main"), provider.WithLogger(logger))
	_, err := p.Main().Pool().Exec(t.Context(), "SELECT $1::int", "x")
	require.Error(t, err)
	require.Empty(t, withMsg(logs.records(t), "pgx query"))
}

func TestWithAfterConnectRunsOnEveryConnection(t *testing.T) {
	t.Parallel()
	raw, _ := databaseURL(t)
	p := newProvider(t, fast(map[string]string{"DB_MAIN_URL": raw}, "main"),
		provider.WithLogger(slog.New(slog.DiscardHandler)),
		provider.WithAfterConnect(func(ctx context.Context, conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, "SET search_path = after_connect, public")
			return err
		}))
	var path string
	require.NoError(t, p.Main().Pool().QueryRow(t.Context(), "SHOW search_path").Scan(&path))
	require.Equal(t, "after_connect, public", path)
}

func TestNilOptionsAreRejected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opt  provider.Option
		want string
	}{
		{provider.WithLogger(nil), "new provider: WithLogger: logger must not be nil"},
		{provider.WithAfterConnect(nil), "new provider: WithAfterConnect: fn must not be nil"},
		{provider.WithTracerProvider(nil), "new provider: WithTracerProvider: provider must not be nil"},
		{provider.WithMeterProvider(nil), "new provider: WithMeterProvider: provider must not be nil"},
		{nil, "new provider: option 0 is nil"},
	} {
		_, err := provider.New(t.Context(), tc.opt)
		require.EqualError(t, err, tc.want)
	}
}
