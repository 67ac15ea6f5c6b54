package outbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/cortexerp/datalayer/uow"
)

const inboxSQL = `INSERT INTO outbox_inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`

// Inbox records, in the unit of work of ctx, that consumer processes the
// event eventID, and reports whether this is the first time: false means a
// redelivery whose effect is already committed (skip it). Call it first
// thing in the consumer's unit of work, beside the effect: both commit, or
// neither does, so the effect happens once per consumer however often the
// event arrives. A concurrent duplicate waits for the first to commit or
// roll back. Without a unit of work in ctx it returns [ErrNoUnitOfWork].
func Inbox(ctx context.Context, consumer string, eventID int64) (first bool, err error) {
	if consumer == "" {
		return false, errors.New("outbox inbox: consumer must not be empty")
	}
	db, ok := uow.DB(ctx)
	if !ok {
		return false, ErrNoUnitOfWork
	}
	tag, err := db.Exec(ctx, inboxSQL, consumer, eventID)
	if err != nil {
		return false, fmt.Errorf("outbox inbox: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Once wraps fn as an idempotent handler (for a [Bus] subscription or a
// [SinkFunc]): it runs fn in a unit of work of u that first records the
// event in consumer's inbox ([Inbox]) and skips fn for an event already
// processed. opts go to u.Do (uow.Retry, …).
func Once[Q any](u *uow.UnitOfWork[Q], consumer string, fn func(ctx context.Context, q Q, e Event) error, opts ...uow.TxOption) func(ctx context.Context, e Event) error {
	return func(ctx context.Context, e Event) error {
		return u.Do(ctx, func(ctx context.Context, q Q) error {
			first, err := Inbox(ctx, consumer, e.ID)
			if err != nil || !first {
				return err
			}
			return fn(ctx, q, e)
		}, opts...)
	}
}
