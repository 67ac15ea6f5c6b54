package uow

import (
	"context"
	"errors"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const (
	slogDebug = slog.LevelDebug
	slogWarn  = slog.LevelWarn
	slogError = slog.LevelError
)

func attrName(n string) slog.Attr  { return slog.String("name", n) }
func attrAttempt(n int) slog.Attr  { return slog.Int("attempt", n) }
func attrErr(err error) slog.Attr  { return slog.String("error", err.Error()) }
func attrXid(xid uint64) slog.Attr { return slog.Uint64("xid", xid) }

// startSpan opens the span of one level when tracing is on.
func (c *core) startSpan(ctx context.Context, l *level) (context.Context, trace.Span) {
	if c.cfg.tracer == nil {
		return ctx, nil
	}
	name := "uow.Do"
	if l.depth > 0 {
		name = "uow.Savepoint"
	}
	if l.name != "" {
		name += " " + l.name
	}
	return c.cfg.tracer.Start(ctx, name, trace.WithAttributes(
		attribute.Int("uow.depth", l.depth),
		attribute.Int("uow.attempt", l.tx.attempt),
		attribute.Bool("uow.read_only", l.readOnly),
	))
}

// endSpan records the outcome of a level.
func (c *core) endSpan(span trace.Span, t *txn, err error) {
	if span == nil {
		return
	}
	outcome := "commit"
	switch {
	case errors.Is(err, ErrCommitUnknown):
		outcome = "unknown"
	case err != nil:
		outcome = "rollback"
	}
	span.SetAttributes(attribute.String("uow.outcome", outcome), attribute.Int("uow.savepoints", t.savepoints))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
