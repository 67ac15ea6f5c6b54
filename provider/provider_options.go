package provider

import (
	"context"
	"errors"
	"log/slog"
	"maps"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option configures New; an option that cannot apply makes New fail.
// Options are immutable values, safe to share between goroutines.
type Option interface {
	apply(*options) error
}

type options struct {
	logger         *slog.Logger
	environ        map[string]string // nil: the process environment
	afterConnect   []func(context.Context, *pgx.Conn) error
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

// WithLogger sends the provider's logs (connection attempts, query log) to
// logger instead of slog.Default().
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) error {
		if logger == nil {
			return errors.New("WithLogger: logger must not be nil")
		}
		o.logger = logger
		return nil
	})
}

// WithEnvironment makes New read its variables from environ instead of the
// process environment (tests, or configuration from elsewhere). A nil map
// is an empty environment.
func WithEnvironment(environ map[string]string) Option {
	return optionFunc(func(o *options) error {
		o.environ = maps.Clone(environ)
		if o.environ == nil {
			o.environ = map[string]string{}
		}
		return nil
	})
}

// WithAfterConnect runs fn on every new connection of every pool, before
// the pool hands it out (to register custom types, for example). Several
// calls add functions that run in order, after the provider has registered
// every enum type of the database and its array type (no code needed for
// those).
func WithAfterConnect(fn func(ctx context.Context, conn *pgx.Conn) error) Option {
	return optionFunc(func(o *options) error {
		if fn == nil {
			return errors.New("WithAfterConnect: fn must not be nil")
		}
		o.afterConnect = append(o.afterConnect, fn)
		return nil
	})
}

// WithTracerProvider records an OpenTelemetry span per query, batch, copy,
// connect and acquire (through otelpgx), as a child of the span in the
// statement's ctx: a statement outside any recording span is not traced.
// Parameters are recorded only with DB_LOG_PARAMS=true. Without this option
// no spans are made.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) error {
		if tp == nil {
			return errors.New("WithTracerProvider: provider must not be nil")
		}
		o.tracerProvider = tp
		return nil
	})
}

// WithMeterProvider records pool statistics (pgxpool.* instruments) and
// operation durations through otelpgx. Without this option no metrics are
// recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) error {
		if mp == nil {
			return errors.New("WithMeterProvider: provider must not be nil")
		}
		o.meterProvider = mp
		return nil
	})
}
