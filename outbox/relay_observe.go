package outbox

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const instrumentation = "github.com/cortexerp/datalayer/outbox"

// observer records a relay's metrics, spans and log lines.
type observer struct {
	r         *Relay
	tracer    trace.Tracer
	attrs     metric.MeasurementOption
	delivered metric.Int64Counter
	retried   metric.Int64Counter
	dead      metric.Int64Counter
	duration  metric.Float64Histogram
	lag       metric.Float64Histogram
}

func newObserver(r *Relay) (*observer, error) {
	m := r.cfg.meters.Meter(instrumentation)
	o := &observer{
		r:      r,
		tracer: r.cfg.tracers.Tracer(instrumentation),
		attrs:  metric.WithAttributes(attribute.String("outbox.relay", r.cfg.name)),
	}
	var err error
	if o.delivered, err = m.Int64Counter("outbox.events.delivered", metric.WithDescription("Events the sink accepted.")); err != nil {
		return nil, err
	}
	if o.retried, err = m.Int64Counter("outbox.events.retried", metric.WithDescription("Failed deliveries scheduled for a retry.")); err != nil {
		return nil, err
	}
	if o.dead, err = m.Int64Counter("outbox.events.dead_lettered", metric.WithDescription("Events dead-lettered after their last attempt.")); err != nil {
		return nil, err
	}
	if o.duration, err = m.Float64Histogram("outbox.delivery.duration", metric.WithUnit("s"),
		metric.WithDescription("Time of one Deliver call.")); err != nil {
		return nil, err
	}
	if o.lag, err = m.Float64Histogram("outbox.relay.lag", metric.WithUnit("s"),
		metric.WithDescription("From an event's insert to its delivery.")); err != nil {
		return nil, err
	}
	pending, err := m.Int64ObservableGauge("outbox.events.pending", metric.WithDescription("Events not yet delivered nor dead."))
	if err != nil {
		return nil, err
	}
	oldest, err := m.Float64ObservableGauge("outbox.events.oldest_pending_age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest pending event; 0 when none."))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, obs metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := ReadStats(ctx, r.pool)
		if err != nil {
			return err
		}
		obs.ObserveInt64(pending, st.Pending, o.attrs)
		obs.ObserveFloat64(oldest, st.OldestPendingAge.Seconds(), o.attrs)
		return nil
	}, pending, oldest)
	if err != nil {
		return nil, err
	}
	return o, nil
}

func (o *observer) eventAttrs(e Event) []slog.Attr {
	as := []slog.Attr{
		slog.String("relay", o.r.cfg.name), slog.Int64("id", e.ID), slog.String("topic", e.Topic),
		slog.String("key", e.Key), slog.Int("attempt", e.Attempt),
	}
	if o.r.cfg.logPayloads {
		as = append(as, slog.String("payload", string(e.Payload)))
	}
	return as
}

func (o *observer) startDeliver(ctx context.Context, e Event) (context.Context, trace.Span) {
	return o.tracer.Start(ctx, "outbox.deliver", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("outbox.relay", o.r.cfg.name),
			attribute.Int64("outbox.event.id", e.ID),
			attribute.String("outbox.event.topic", e.Topic),
			attribute.String("outbox.event.key", e.Key),
			attribute.Int("outbox.event.attempt", e.Attempt),
		))
}

func (o *observer) endDeliver(ctx context.Context, span trace.Span, e Event, out outcome) {
	o.duration.Record(ctx, out.took.Seconds(), o.attrs)
	if out.err != nil {
		span.RecordError(out.err)
		span.SetStatus(codes.Error, errorText(out.err))
		span.SetAttributes(attribute.Bool("outbox.event.dead", out.dead))
	}
	span.End()
}

// recorded counts a delivery outcome once its mark committed, and logs it.
func (o *observer) recorded(ctx context.Context, e Event, out outcome) {
	l := o.r.cfg.logger
	switch {
	case out.err == nil:
		o.delivered.Add(ctx, 1, o.attrs)
		o.lag.Record(ctx, time.Since(e.CreatedAt).Seconds(), o.attrs)
		l.LogAttrs(ctx, slog.LevelDebug, "outbox event delivered", o.eventAttrs(e)...)
	case out.dead:
		o.dead.Add(ctx, 1, o.attrs)
		l.LogAttrs(ctx, slog.LevelError, "outbox event dead-lettered",
			append(o.eventAttrs(e), slog.String("error", errorText(out.err)))...)
	default:
		o.retried.Add(ctx, 1, o.attrs)
		l.LogAttrs(ctx, slog.LevelWarn, "outbox event delivery failed; will retry",
			append(o.eventAttrs(e), slog.String("error", errorText(out.err)), slog.Duration("backoff", out.backoff))...)
	}
}
