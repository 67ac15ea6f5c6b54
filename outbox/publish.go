package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cortexerp/datalayer/uow"
)

// ErrNoUnitOfWork reports a Publish whose ctx carries no unit of work: an
// event written outside a transaction could exist without the change it
// announces. Call it inside uow's Do.
var ErrNoUnitOfWork = errors.New("outbox: ctx carries no unit of work (publish inside uow's Do)")

// Message is one event to publish; see [Publish] for its fields.
type Message struct {
	Topic   string
	Key     string
	Payload []byte
	Headers map[string]string
}

// A PublishOption adds to one [Publish].
type PublishOption interface {
	applyMessage(*Message) error
}

type publishOptionFunc func(*Message) error

func (f publishOptionFunc) applyMessage(m *Message) error { return f(m) }

// WithHeaders adds headers to the event (merged with those of earlier
// WithHeaders). Sinks pass them on (the JetStream sink as message headers).
func WithHeaders(h map[string]string) PublishOption {
	return publishOptionFunc(func(m *Message) error {
		for k := range h {
			if k == "" {
				return errors.New("WithHeaders: a header name is empty")
			}
		}
		if m.Headers == nil {
			m.Headers = make(map[string]string, len(h))
		}
		for k, v := range h {
			m.Headers[k] = v
		}
		return nil
	})
}

// keyLockClass is the first half of the transaction-level advisory lock a
// publisher takes per key (the second is hashtext(key)); the two-int form
// never collides with single-bigint advisory locks such as goose's.
const keyLockClass = "1868724224" // 0x6f627800, "obx\0"

// publishSQL writes a batch of events. It first takes, in key order, the
// transaction-level advisory lock of each non-empty key (OFFSET 0 keeps the
// lock subquery a plan node of its own, run before any row is inserted), so
// that writers of one key commit one after the other and each event's id,
// drawn from the identity sequence after the lock, is in commit order per
// key. Its sqlc-style name line lets uow's write-behind defer it to COMMIT.
const publishSQL = `-- name: OutboxPublish :exec
INSERT INTO outbox_events (topic, key, payload, headers)
SELECT m.topic, m.key, m.payload, m.headers::jsonb
FROM (SELECT count(pg_advisory_xact_lock(` + keyLockClass + `, hashtext(k)))
      FROM (SELECT DISTINCT k FROM unnest($2::text[]) AS u(k) WHERE k <> '' ORDER BY k) AS keys
      OFFSET 0) AS locked,
     unnest($1::text[], $2::text[], $3::bytea[], $4::text[]) WITH ORDINALITY AS m(topic, key, payload, headers, ord)
ORDER BY m.ord`

// Publish writes one event in the unit of work of ctx (through uow.DB), so
// it exists if and only if that transaction commits; inside a nested Do it
// is dropped with its savepoint. topic must not be empty. Events of one key
// are delivered in commit order, one at a time; "" means no order. Writers
// of one key wait for each other from their Publish to their COMMIT (a
// transaction-level advisory lock per key): keep such transactions short,
// and under REPEATABLE READ or SERIALIZABLE publish early. Two transactions
// publishing to the same keys in different orders, in separate calls, can
// deadlock: PostgreSQL aborts one with 40P01, which uow.Retry retries
// ([PublishBatch] takes its keys in order). Under uow's
// write-behind the insert rides with the next round trip, and its error
// comes back from there. Without a unit of work in ctx it returns
// [ErrNoUnitOfWork].
func Publish(ctx context.Context, topic, key string, payload []byte, opts ...PublishOption) error {
	m := Message{Topic: topic, Key: key, Payload: payload}
	for i, o := range opts {
		if o == nil {
			return fmt.Errorf("outbox publish: option %d is nil", i)
		}
		if err := o.applyMessage(&m); err != nil {
			return fmt.Errorf("outbox publish: %w", err)
		}
	}
	return publish(ctx, []Message{m})
}

// PublishBatch writes msgs in one statement, in the unit of work of ctx,
// with ids in their order; see [Publish]. Its key locks are taken in key
// order, so two batches never deadlock on each other.
func PublishBatch(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	return publish(ctx, msgs)
}

func publish(ctx context.Context, msgs []Message) error {
	db, ok := uow.DB(ctx)
	if !ok {
		return ErrNoUnitOfWork
	}
	topics := make([]string, len(msgs))
	keys := make([]string, len(msgs))
	payloads := make([][]byte, len(msgs))
	headers := make([]string, len(msgs))
	var errs []error
	for i, m := range msgs {
		if strings.TrimSpace(m.Topic) == "" {
			errs = append(errs, fmt.Errorf("message %d: topic must not be empty", i))
		}
		for k := range m.Headers {
			if k == "" {
				errs = append(errs, fmt.Errorf("message %d: a header name is empty", i))
				break
			}
		}
		h := []byte("{}")
		if len(m.Headers) > 0 {
			var err error
			if h, err = json.Marshal(m.Headers); err != nil {
				errs = append(errs, fmt.Errorf("message %d: encode headers: %w", i, err))
			}
		}
		// Copied: under write-behind the statement runs after Publish
		// returned, and callers reuse their buffers.
		topics[i], keys[i], payloads[i], headers[i] = m.Topic, m.Key, slices.Clone(m.Payload), string(h)
		if payloads[i] == nil {
			payloads[i] = []byte{}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("outbox publish: %w", err)
	}
	if _, err := db.Exec(ctx, publishSQL, topics, keys, payloads, headers); err != nil {
		return fmt.Errorf("outbox publish: %w", err)
	}
	return nil
}
