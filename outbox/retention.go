package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultRetentionBatch is the batch size of [DeleteDelivered] and
// [DeleteInbox] when given 0.
const DefaultRetentionBatch = 1000

const deleteDeliveredSQL = `DELETE FROM outbox_events WHERE id IN (
    SELECT id FROM outbox_events
    WHERE state = 'delivered' AND delivered_at < now() - $1::interval
    ORDER BY delivered_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED)`

const deleteInboxSQL = `DELETE FROM outbox_inbox WHERE (consumer, event_id) IN (
    SELECT consumer, event_id FROM outbox_inbox
    WHERE processed_at < now() - $1::interval
    LIMIT $2
    FOR UPDATE SKIP LOCKED)`

// DeleteDelivered deletes the events delivered more than olderThan ago,
// batch rows per statement (0: [DefaultRetentionBatch]), each statement its
// own transaction, so it never holds many locks or a long transaction. Pending
// and dead events stay, whatever their age. It returns how many it deleted.
// Run it from a periodic job; several may run at once.
func DeleteDelivered(ctx context.Context, pool *pgxpool.Pool, olderThan time.Duration, batch int) (int64, error) {
	n, err := deleteBatches(ctx, pool, deleteDeliveredSQL, olderThan, batch)
	if err != nil {
		return n, fmt.Errorf("outbox delete delivered: %w", err)
	}
	return n, nil
}

// DeleteInbox deletes the inbox records (see [Inbox]) older than olderThan,
// in batches like [DeleteDelivered]. Keep them longer than an event can be
// redelivered (the relays' longest backoff times their attempts, plus
// dead-letter replays): a redelivery after its record was deleted is
// processed again.
func DeleteInbox(ctx context.Context, pool *pgxpool.Pool, olderThan time.Duration, batch int) (int64, error) {
	n, err := deleteBatches(ctx, pool, deleteInboxSQL, olderThan, batch)
	if err != nil {
		return n, fmt.Errorf("outbox delete inbox: %w", err)
	}
	return n, nil
}

func deleteBatches(ctx context.Context, pool *pgxpool.Pool, sql string, olderThan time.Duration, batch int) (int64, error) {
	switch {
	case pool == nil:
		return 0, errors.New("pool must not be nil")
	case olderThan < 0:
		return 0, fmt.Errorf("age %v must not be negative", olderThan)
	case batch < 0:
		return 0, fmt.Errorf("batch %d must not be negative", batch)
	case batch == 0:
		batch = DefaultRetentionBatch
	}
	var total int64
	for {
		tag, err := pool.Exec(ctx, sql, olderThan, batch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}
