package provider

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/tracelog"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cortexerp/datalayer/internal/secret"
)

// durationKey is the query log's attribute for a statement's duration.
const durationKey = "duration"

// tracer assembles the pgx tracer of one pool: the slog query log, otelpgx
// spans and metrics when providers were given, and the connection tracker
// Close uses.
func tracer(cfg Config, o *options, logger *slog.Logger, poolName string, tracker *connTracker) *multitracer.Tracer {
	var tracers []pgx.QueryTracer
	level, _ := tracelog.LogLevelFromString(cfg.LogLevel) // validated by loadConfig
	if level > tracelog.LogLevelNone {
		effective := level
		if cfg.SlowQuery > 0 && effective < tracelog.LogLevelInfo {
			effective = tracelog.LogLevelInfo // the adapter needs every query's end to spot slow ones
		}
		tracers = append(tracers, &tracelog.TraceLog{
			Logger: &queryLogger{
				logger: logger,
				level:  level,
				slow:   cfg.SlowQuery,
				params: cfg.LogParams,
			},
			LogLevel: effective,
			Config:   &tracelog.TraceLogConfig{TimeKey: durationKey},
		})
	}
	if o.tracerProvider != nil || o.meterProvider != nil {
		tracers = append(tracers, &spanScrubber{
			Tracer: otelpgx.NewTracer(otelOptions(cfg, o, poolName)...),
			params: cfg.LogParams,
		})
	}
	t := multitracer.New(tracers...)
	t.PoolAcquireTracers = append(t.PoolAcquireTracers, tracker)
	t.PoolReleaseTracers = append(t.PoolReleaseTracers, tracker)
	return t
}

// poolAttr names a pool in spans and metrics ("main", "main/replica-0").
func poolAttr(poolName string) attribute.KeyValue {
	return attribute.String("db.client.connection.pool.name", poolName)
}

func otelOptions(cfg Config, o *options, poolName string) []otelpgx.Option {
	var tp = o.tracerProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider() // otelpgx would fall back to the global one
	}
	var mp = o.meterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	opts := []otelpgx.Option{
		otelpgx.WithTracerProvider(tp),
		otelpgx.WithMeterProvider(mp),
		otelpgx.WithTracerAttributes(poolAttr(poolName)),
		otelpgx.WithMeterAttributes(poolAttr(poolName)),
	}
	if cfg.LogParams {
		opts = append(opts, otelpgx.WithIncludeQueryParameters())
	}
	return opts
}

// recordStats exports a pool's statistics when a meter provider was given.
func recordStats(o *options, pool *pgxpool.Pool, poolName string) error {
	if o.meterProvider == nil {
		return nil
	}
	err := otelpgx.RecordStats(pool,
		otelpgx.WithStatsMeterProvider(o.meterProvider),
		otelpgx.WithStatsAttributes(poolAttr(poolName)),
	)
	if err != nil {
		return fmt.Errorf("record pool stats: %w", err)
	}
	return nil
}

// queryLogger adapts pgx's tracelog to slog: it maps levels, promotes slow
// statements to warn, drops parameters unless enabled and scrubs error texts
// (secret.Error: connection strings' passwords and, unless parameters are
// enabled, parameter values). Safe for concurrent use.
type queryLogger struct {
	logger *slog.Logger
	level  tracelog.LogLevel
	slow   time.Duration
	params bool
}

var _ tracelog.Logger = (*queryLogger)(nil)

// slowMsgs are the tracelog messages that end a statement.
var slowMsgs = map[string]bool{"Query": true, "BatchClose": true, "CopyFrom": true}

// Log implements tracelog.Logger.
func (l *queryLogger) Log(ctx context.Context, level tracelog.LogLevel, msg string, data map[string]any) {
	d, _ := data[durationKey].(time.Duration)
	slow := level == tracelog.LogLevelInfo && l.slow > 0 && d >= l.slow && slowMsgs[msg]
	if level > l.level && !slow {
		return
	}
	lvl := slogLevel(level)
	if slow {
		lvl = slog.LevelWarn
	}
	if !l.logger.Enabled(ctx, lvl) {
		return
	}
	var params []string
	if !l.params {
		params = argStrings(data["args"])
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range data {
			if !yield(k) {
				return
			}
		}
	})
	attrs := make([]slog.Attr, 0, len(keys)+1)
	for _, k := range keys {
		v := data[k]
		switch k {
		case "args":
			if !l.params {
				continue
			}
		case "err":
			if err, ok := v.(error); ok {
				v = secret.Error(err, params...).Error()
			}
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	if slow {
		attrs = append(attrs, slog.Bool("slow", true))
	}
	l.logger.LogAttrs(ctx, lvl, "pgx "+strings.ToLower(msg), attrs...)
}

// argStrings are the texts of a statement's parameters, as tracelog logged them.
func argStrings(v any) []string {
	args, _ := v.([]any)
	var out []string
	for _, a := range args {
		if a == nil {
			continue
		}
		s := fmt.Sprint(a)
		s, _, _ = strings.Cut(s, " (truncated ") // tracelog shortens long values
		out = append(out, s)
	}
	return out
}

func slogLevel(l tracelog.LogLevel) slog.Level {
	switch l {
	case tracelog.LogLevelTrace:
		return slog.LevelDebug - 4
	case tracelog.LogLevelDebug:
		return slog.LevelDebug
	case tracelog.LogLevelInfo:
		return slog.LevelInfo
	case tracelog.LogLevelWarn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// spanScrubber wraps otelpgx's tracer so that the error texts it records on
// spans are scrubbed (secret.Error: connection strings' passwords and, unless
// parameters are enabled, parameter values: a server message can quote a
// parameter, invalid input syntax for type integer: "…"). Safe for
// concurrent use.
type spanScrubber struct {
	*otelpgx.Tracer
	params bool
}

type queryArgsKey struct{}

// TraceQueryStart implements pgx.QueryTracer.
func (s *spanScrubber) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	ctx = s.Tracer.TraceQueryStart(ctx, conn, data)
	if !s.params && len(data.Args) > 0 {
		ctx = context.WithValue(ctx, queryArgsKey{}, data.Args)
	}
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (s *spanScrubber) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	args, _ := ctx.Value(queryArgsKey{}).([]any)
	data.Err = s.scrub(data.Err, args)
	s.Tracer.TraceQueryEnd(ctx, conn, data)
}

// TraceBatchQuery implements pgx.BatchTracer.
func (s *spanScrubber) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	var args []any
	if !s.params {
		args = data.Args
	}
	data.Err = s.scrub(data.Err, args)
	s.Tracer.TraceBatchQuery(ctx, conn, data)
}

// TraceBatchEnd implements pgx.BatchTracer.
func (s *spanScrubber) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	data.Err = s.scrub(data.Err, nil)
	s.Tracer.TraceBatchEnd(ctx, conn, data)
}

// TraceCopyFromEnd implements pgx.CopyFromTracer.
func (s *spanScrubber) TraceCopyFromEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	data.Err = s.scrub(data.Err, nil)
	s.Tracer.TraceCopyFromEnd(ctx, conn, data)
}

// TracePrepareEnd implements pgx.PrepareTracer.
func (s *spanScrubber) TracePrepareEnd(ctx context.Context, conn *pgx.Conn, data pgx.TracePrepareEndData) {
	data.Err = s.scrub(data.Err, nil)
	s.Tracer.TracePrepareEnd(ctx, conn, data)
}

// TraceConnectEnd implements pgx.ConnectTracer.
func (s *spanScrubber) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	data.Err = s.scrub(data.Err, nil)
	s.Tracer.TraceConnectEnd(ctx, data)
}

// TraceAcquireEnd implements pgxpool.AcquireTracer.
func (s *spanScrubber) TraceAcquireEnd(ctx context.Context, pool *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	data.Err = s.scrub(data.Err, nil)
	s.Tracer.TraceAcquireEnd(ctx, pool, data)
}

func (s *spanScrubber) scrub(err error, args []any) error {
	if err == nil {
		return nil
	}
	return secret.Error(err, argStrings(args)...)
}

// connTracker follows the connections a pool has handed out, so that Close
// can interrupt them when its ctx ends. Safe for concurrent use.
type connTracker struct {
	mu    sync.Mutex
	conns map[*pgx.Conn]struct{}
}

var (
	_ pgxpool.AcquireTracer = (*connTracker)(nil)
	_ pgxpool.ReleaseTracer = (*connTracker)(nil)
)

func newConnTracker() *connTracker { return &connTracker{conns: map[*pgx.Conn]struct{}{}} }

// TraceAcquireStart implements pgxpool.AcquireTracer.
func (t *connTracker) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}

// TraceAcquireEnd implements pgxpool.AcquireTracer.
func (t *connTracker) TraceAcquireEnd(_ context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	if data.Err != nil || data.Conn == nil {
		return
	}
	t.mu.Lock()
	t.conns[data.Conn] = struct{}{}
	t.mu.Unlock()
}

// TraceRelease implements pgxpool.ReleaseTracer.
func (t *connTracker) TraceRelease(_ *pgxpool.Pool, data pgxpool.TraceReleaseData) {
	t.mu.Lock()
	delete(t.conns, data.Conn)
	t.mu.Unlock()
}

// interrupt closes the network connection under every acquired connection:
// their statements fail at once and the pool discards them on release.
func (t *connTracker) interrupt() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		if nc := c.PgConn().Conn(); nc != nil {
			_ = nc.Close()
		}
	}
	return len(t.conns)
}
