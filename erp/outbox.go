package erp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/uow"
)

// Outbox topics; their payload is an OrderEvent.
const (
	TopicOrderPlaced    = "order.placed"
	TopicOrderPaid      = "order.paid"
	TopicOrderCancelled = "order.cancelled"
)

// OrderEvent is the JSON payload of the order topics.
type OrderEvent struct {
	OrderID    int64           `json:"order_id"`
	PublicID   uuid.UUID       `json:"public_id"`
	CustomerID int64           `json:"customer_id"`
	Status     OrderStatus     `json:"status"`
	Total      decimal.Decimal `json:"total"`
}

// emit writes an order event to the outbox in the unit of work of ctx, and
// registers an AfterCommit hook that wakes a Publisher once it is committed.
func (s *Service) emit(ctx context.Context, q *dbgen.Queries, topic string, o Order) error {
	payload, err := json.Marshal(OrderEvent{OrderID: o.ID, PublicID: o.PublicID, CustomerID: o.CustomerID, Status: o.Status, Total: o.Total})
	if err != nil {
		return fmt.Errorf("encode %s event: %w", topic, err)
	}
	// An :exec: under write-behind the event rides with COMMIT.
	if err := q.OutboxInsert(ctx, dbgen.OutboxInsertParams{Topic: topic, Payload: payload}); err != nil {
		return fmt.Errorf("write %s event: %w", topic, err)
	}
	uow.AfterCommit(ctx, s.notifyPublishers)
	return nil
}

// Event is a committed outbox event, as handed to a PublishFunc.
type Event struct {
	ID        int64 // unique: consumers deduplicate on it
	Topic     string
	Payload   json.RawMessage
	CreatedAt time.Time
}

// PublishFunc delivers one event (to a broker, a webhook, …). It runs while
// the event's row is locked, with the ctx given to Run or PublishPending; an
// error stops the batch and leaves that event for a later try.
type PublishFunc func(ctx context.Context, e Event) error

// Publisher moves committed outbox events to a PublishFunc, at least once:
// an event is marked published in the transaction that claimed it, so a
// crash between publishing and COMMIT publishes it again. Several publishers
// (in one process or many) share the work: each claims a batch with FOR
// UPDATE SKIP LOCKED, so no event is handed to two of them at once.
//
// A Publisher is safe for concurrent use.
type Publisher struct {
	svc       *Service
	publish   PublishFunc
	batchSize int32
	interval  time.Duration
	logger    *slog.Logger
}

// PublisherOption configures NewPublisher.
type PublisherOption interface {
	apply(*Publisher) error
}

type publisherOption func(*Publisher) error

func (f publisherOption) apply(p *Publisher) error { return f(p) }

// WithBatchSize sets how many events one transaction claims (default 100).
func WithBatchSize(n int32) PublisherOption {
	return publisherOption(func(p *Publisher) error {
		if n <= 0 {
			return fmt.Errorf("WithBatchSize: %d must be positive", n)
		}
		p.batchSize = n
		return nil
	})
}

// WithPollInterval sets how often Run looks for events it was not woken for:
// those of other processes, and retries after a failure (default 1s).
func WithPollInterval(d time.Duration) PublisherOption {
	return publisherOption(func(p *Publisher) error {
		if d <= 0 {
			return fmt.Errorf("WithPollInterval: %v must be positive", d)
		}
		p.interval = d
		return nil
	})
}

// WithLogger makes Run log its failures to l (default slog.Default()).
func WithLogger(l *slog.Logger) PublisherOption {
	return publisherOption(func(p *Publisher) error {
		if l == nil {
			return errors.New("WithLogger: logger must not be nil")
		}
		p.logger = l
		return nil
	})
}

// NewPublisher returns a Publisher of the service's outbox to publish.
func (s *Service) NewPublisher(publish PublishFunc, opts ...PublisherOption) (*Publisher, error) {
	if publish == nil {
		return nil, errors.New("new publisher: publish func must not be nil")
	}
	p := &Publisher{svc: s, publish: publish, batchSize: 100, interval: time.Second, logger: slog.Default()}
	for _, o := range opts {
		if err := o.apply(p); err != nil {
			return nil, fmt.Errorf("new publisher: %w", err)
		}
	}
	return p, nil
}

// Run publishes events until ctx ends: at once, whenever a unit of work of
// the service commits an event, and every poll interval. Failures are logged
// and retried at the next poll. When ctx ends, the batch in flight stops and
// its published events are marked before Run returns.
func (p *Publisher) Run(ctx context.Context) {
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		if _, err := p.PublishPending(ctx); err != nil && ctx.Err() == nil {
			p.logger.WarnContext(ctx, "outbox: publish events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.svc.wake:
		case <-tick.C:
		}
	}
}

// PublishPending publishes events, a batch per transaction, until none is
// left that another publisher does not hold, and returns how many it
// published.
func (p *Publisher) PublishPending(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := p.publishBatch(ctx)
		total += n
		if err != nil || n < int(p.batchSize) {
			return total, err
		}
	}
}

// publishBatch claims a batch, publishes it in order and marks what was
// published; a publish failure stops the batch (the rest stays pending).
//
// The transaction ends normally even when ctx ends (ctx then stops the
// batch), so that what was published is marked and not published again.
func (p *Publisher) publishBatch(ctx context.Context) (int, error) {
	var failed error
	n, err := uow.DoResult(context.WithoutCancel(ctx), p.svc.uow, func(txCtx context.Context, q *dbgen.Queries) (int, error) {
		failed = nil
		events, err := q.OutboxClaim(txCtx, p.batchSize)
		if err != nil {
			return 0, fmt.Errorf("claim events: %w", err)
		}
		ids := make([]int64, 0, len(events))
		for _, e := range events {
			if failed = ctx.Err(); failed != nil {
				break
			}
			err := p.publish(ctx, Event{ID: e.ID, Topic: e.Topic, Payload: e.Payload, CreatedAt: e.CreatedAt})
			if err != nil {
				failed = fmt.Errorf("publish event %d (%s): %w", e.ID, e.Topic, err)
				break
			}
			ids = append(ids, e.ID)
		}
		if len(ids) == 0 {
			return 0, nil
		}
		if _, err := q.OutboxMarkPublished(txCtx, ids); err != nil {
			return 0, fmt.Errorf("mark events published: %w", err)
		}
		return len(ids), nil
	}, uow.Name("erp.Publisher"))
	if err != nil {
		return 0, err
	}
	return n, failed
}
