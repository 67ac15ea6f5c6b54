package erp

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/cortexerp/datalayer/outbox"
)

// Topics of the events the service publishes through the kit's outbox;
// their payload is an OrderEvent, their key the order's ID, so that a
// relay delivers one order's events in the order they were committed.
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

// OrderKey is the outbox key of an order's events.
func OrderKey(orderID int64) string { return "order-" + strconv.FormatInt(orderID, 10) }

// emit publishes an order event in the unit of work of ctx
// (outbox.Publish): it exists if and only if the order's change commits.
// Under write-behind the insert rides with COMMIT.
func emit(ctx context.Context, topic string, o Order) error {
	payload, err := json.Marshal(OrderEvent{OrderID: o.ID, PublicID: o.PublicID, CustomerID: o.CustomerID, Status: o.Status, Total: o.Total})
	if err != nil {
		return fmt.Errorf("encode %s event: %w", topic, err)
	}
	if err := outbox.Publish(ctx, topic, OrderKey(o.ID), payload); err != nil {
		return fmt.Errorf("write %s event: %w", topic, err)
	}
	return nil
}

// NewRelay returns an outbox relay of the service's database delivering to
// sink (see outbox.NewRelay for opts). The database needs the outbox's
// migrations (outbox.Migrate) besides the application's.
func (s *Service) NewRelay(sink outbox.Sink, opts ...outbox.RelayOption) (*outbox.Relay, error) {
	return outbox.NewRelay(s.pool, sink, opts...)
}

// Pool is the pool the service was built with.
func (s *Service) Pool() *pgxpool.Pool { return s.pool }
