package outbox

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Defaults of the relay options.
const (
	DefaultWorkers      = 4
	DefaultBatchSize    = 16
	DefaultPollInterval = time.Second
	DefaultMaxAttempts  = 10
	DefaultBackoffBase  = time.Second
	DefaultBackoffMax   = 5 * time.Minute
	DefaultSinkTimeout  = 30 * time.Second
	DefaultStuckAfter   = time.Minute
	// DefaultListenProbe bounds the wait for the relay's own probe
	// notification; see [WithoutListen].
	DefaultListenProbe = 2 * time.Second
)

// A RelayOption configures [NewRelay]. A bad value makes NewRelay fail with
// an error naming the option; all bad options are reported together.
type RelayOption interface {
	applyRelay(*relayConfig) error
}

type relayOptionFunc func(*relayConfig) error

func (f relayOptionFunc) applyRelay(c *relayConfig) error { return f(c) }

type relayConfig struct {
	workers      int
	batchSize    int
	pollInterval time.Duration
	listen       bool
	listenProbe  time.Duration
	maxAttempts  int
	backoffBase  time.Duration
	backoffMax   time.Duration
	sinkTimeout  time.Duration
	stuckAfter   time.Duration
	logger       *slog.Logger
	logPayloads  bool
	meters       metric.MeterProvider
	tracers      trace.TracerProvider
	name         string
}

func newRelayConfig(opts []RelayOption) (relayConfig, error) {
	c := relayConfig{
		workers:      DefaultWorkers,
		batchSize:    DefaultBatchSize,
		pollInterval: DefaultPollInterval,
		listen:       true,
		listenProbe:  DefaultListenProbe,
		maxAttempts:  DefaultMaxAttempts,
		backoffBase:  DefaultBackoffBase,
		backoffMax:   DefaultBackoffMax,
		sinkTimeout:  DefaultSinkTimeout,
		stuckAfter:   DefaultStuckAfter,
		logger:       slog.New(slog.DiscardHandler),
		meters:       metricnoop.NewMeterProvider(),
		tracers:      tracenoop.NewTracerProvider(),
		name:         "outbox",
	}
	var errs []error
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		if err := o.applyRelay(&c); err != nil {
			errs = append(errs, err)
		}
	}
	if c.backoffMax < c.backoffBase {
		errs = append(errs, fmt.Errorf("WithBackoff: max %v is below base %v", c.backoffMax, c.backoffBase))
	}
	return c, errors.Join(errs...)
}

// WithWorkers sets how many events of different keys are delivered at once
// (default [DefaultWorkers]). Each worker holds one pooled connection while
// it delivers: the pool needs workers + 1 connections for the relay.
func WithWorkers(n int) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if n < 1 {
			return fmt.Errorf("WithWorkers: %d must be at least 1", n)
		}
		c.workers = n
		return nil
	})
}

// WithBatchSize sets how many events a worker claims at once (default
// [DefaultBatchSize]): at most one per key, delivered one after the other
// and marked in one round trip.
func WithBatchSize(n int) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if n < 1 {
			return fmt.Errorf("WithBatchSize: %d must be at least 1", n)
		}
		c.batchSize = n
		return nil
	})
}

// WithPollInterval sets how often an idle worker looks for events without
// being woken (default [DefaultPollInterval]): the latency bound when
// notifications do not arrive, and the pick-up time of other relays' retries.
func WithPollInterval(d time.Duration) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if d <= 0 {
			return fmt.Errorf("WithPollInterval: %v must be positive", d)
		}
		c.pollInterval = d
		return nil
	})
}

// WithoutListen turns LISTEN/NOTIFY off: the relay only polls. Use it where
// notifications cannot arrive, as behind PgBouncer in transaction mode. The
// relay also finds that out itself: after each LISTEN it sends itself a probe
// notification and, when that does not come back within [DefaultListenProbe],
// it logs a warning, reports Listening false in [Relay.Health] and polls,
// probing again every minute.
func WithoutListen() RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		c.listen = false
		return nil
	})
}

// WithMaxAttempts sets after how many failed deliveries an event is
// dead-lettered (default [DefaultMaxAttempts]); 1 dead-letters at the first failure.
func WithMaxAttempts(n int) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if n < 1 {
			return fmt.Errorf("WithMaxAttempts: %d must be at least 1", n)
		}
		c.maxAttempts = n
		return nil
	})
}

// WithBackoff sets the wait after a failed delivery: base after the first,
// doubling with each further failure up to max, each wait drawn between
// half and all of that (defaults
// [DefaultBackoffBase], [DefaultBackoffMax]). Later events of the same key
// wait too.
func WithBackoff(base, max time.Duration) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if base <= 0 {
			return fmt.Errorf("WithBackoff: base %v must be positive", base)
		}
		c.backoffBase, c.backoffMax = base, max
		return nil
	})
}

// WithSinkTimeout bounds each Deliver call (default [DefaultSinkTimeout]);
// a delivery that runs out of time is a failure, retried.
func WithSinkTimeout(d time.Duration) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if d <= 0 {
			return fmt.Errorf("WithSinkTimeout: %v must be positive", d)
		}
		c.sinkTimeout = d
		return nil
	})
}

// WithStuckAfter sets when [Relay.Health] calls the relay stuck: an event
// has been ready (pending and due) for longer than d (default [DefaultStuckAfter]).
func WithStuckAfter(d time.Duration) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if d <= 0 {
			return fmt.Errorf("WithStuckAfter: %v must be positive", d)
		}
		c.stuckAfter = d
		return nil
	})
}

// WithLogger logs failures (warn), dead letters (error) and deliveries
// (debug) to l, with the event's id, topic, key and attempt; never its
// payload unless [WithLogPayloads]. By default nothing is logged.
func WithLogger(l *slog.Logger) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if l == nil {
			return errors.New("WithLogger: logger must not be nil")
		}
		c.logger = l
		return nil
	})
}

// WithLogPayloads adds each event's payload to the relay's log lines.
// Payloads may hold personal data: leave it off in production.
func WithLogPayloads() RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		c.logPayloads = true
		return nil
	})
}

// WithMeterProvider records the relay's metrics (see docs/EVENTS.md) with
// mp. By default none are recorded.
func WithMeterProvider(mp metric.MeterProvider) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if mp == nil {
			return errors.New("WithMeterProvider: provider must not be nil")
		}
		c.meters = mp
		return nil
	})
}

// WithTracerProvider makes a span per delivery with tp. By default none.
func WithTracerProvider(tp trace.TracerProvider) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if tp == nil {
			return errors.New("WithTracerProvider: provider must not be nil")
		}
		c.tracers = tp
		return nil
	})
}

// WithName names the relay in logs, spans and metrics (default "outbox").
func WithName(name string) RelayOption {
	return relayOptionFunc(func(c *relayConfig) error {
		if name == "" {
			return errors.New("WithName: name must not be empty")
		}
		c.name = name
		return nil
	})
}
