// Package outbox is a transactional outbox: [Publish] writes an event in the
// caller's unit of work (uow), so it exists if and only if that transaction
// commits, and a [Relay] hands committed events to a [Sink] at least once,
// in commit order per key, several relays sharing the work.
//
// The package ships its own migrations ([Migrations], run by [Migrate] with
// the version table [VersionTable]), so it works beside any application
// schema. It knows nothing of the application: topics, keys and payloads
// are the caller's.
//
// How each guarantee is kept and which test proves it: docs/EVENTS.md.
package outbox

import (
	"context"
	"time"
)

// Event is one committed event as handed to a sink.
type Event struct {
	// ID is unique and stable across redeliveries: consumers deduplicate on
	// it (see [Inbox]; the JetStream sink sends it as Nats-Msg-Id).
	ID int64
	// Topic names what happened ("order.placed").
	Topic string
	// Key orders events: those of one key are delivered in commit order,
	// one at a time. "" means no order.
	Key       string
	Payload   []byte
	Headers   map[string]string
	CreatedAt time.Time
	// Attempt is 1 on the first delivery and grows with each failed one.
	// A delivery cut short by a crash is not counted.
	Attempt int
}

// Sink delivers one event; an error means "not delivered, retry later".
// A Relay calls Deliver from several goroutines at once (one per worker),
// never with two events of one key at once.
type Sink interface {
	Deliver(ctx context.Context, e Event) error
}

// SinkFunc is a func used as a [Sink].
type SinkFunc func(ctx context.Context, e Event) error

// Deliver calls f.
func (f SinkFunc) Deliver(ctx context.Context, e Event) error { return f(ctx, e) }

var _ Sink = SinkFunc(nil)
