package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DeadLetter is an event that failed its last attempt, as [ListDead] reads it.
type DeadLetter struct {
	Event               // Attempt: the attempts made
	LastError string    // the sink's last error
	DeadAt    time.Time // when it was dead-lettered
}

const listDeadSQL = `SELECT id, topic, key, payload, headers, created_at, attempts, coalesce(last_error, ''), dead_at
FROM outbox_events
WHERE state = 'dead' AND id > $1 AND ($2 = '' OR topic = $2)
ORDER BY id
LIMIT $3`

// ListDead returns up to limit dead-lettered events with ids above afterID
// (0: from the first), oldest first, of topic ("" for every topic). Page on
// with the last id returned.
func ListDead(ctx context.Context, pool *pgxpool.Pool, topic string, afterID int64, limit int) ([]DeadLetter, error) {
	if pool == nil {
		return nil, errors.New("outbox list dead: pool must not be nil")
	}
	if limit < 1 {
		return nil, fmt.Errorf("outbox list dead: limit %d must be at least 1", limit)
	}
	rows, err := pool.Query(ctx, listDeadSQL, afterID, topic, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox list dead: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		var headers map[string]string
		err := row.Scan(&d.ID, &d.Topic, &d.Key, &d.Payload, &headers, &d.CreatedAt, &d.Attempt, &d.LastError, &d.DeadAt)
		if len(headers) > 0 {
			d.Headers = headers
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox list dead: %w", err)
	}
	return out, nil
}

// Replay makes the dead-lettered events ids pending again, with a fresh
// count of attempts, and wakes the relays; ids that are not dead are left
// alone. It returns how many it replayed. A replayed event keeps its id and
// its place before the later events of its key: those not yet delivered wait
// for it again. Each event is replayed in a transaction of its own that first
// takes its key's publisher lock and waits for any delivery of that key in
// flight, so a key never has two events out at once.
func Replay(ctx context.Context, pool *pgxpool.Pool, ids ...int64) (int, error) {
	if pool == nil {
		return 0, errors.New("outbox replay: pool must not be nil")
	}
	n := 0
	for _, id := range ids {
		ok, err := replayOne(ctx, pool, id)
		if err != nil {
			return n, fmt.Errorf("outbox replay %d: %w", id, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// ReplayAll replays every dead-lettered event of topic ("" for all of
// them), oldest first, in pages of 100; see [Replay].
func ReplayAll(ctx context.Context, pool *pgxpool.Pool, topic string) (int, error) {
	n := 0
	var after int64
	for {
		dead, err := ListDead(ctx, pool, topic, after, 100)
		if err != nil {
			return n, err
		}
		if len(dead) == 0 {
			return n, nil
		}
		ids := make([]int64, len(dead))
		for i, d := range dead {
			ids[i] = d.ID
		}
		m, err := Replay(ctx, pool, ids...)
		n += m
		if err != nil {
			return n, err
		}
		after = ids[len(ids)-1]
	}
}

func replayOne(ctx context.Context, pool *pgxpool.Pool, id int64) (bool, error) {
	var replayed bool
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var key string
		err := tx.QueryRow(ctx, "SELECT key FROM outbox_events WHERE id = $1 AND state = 'dead' FOR UPDATE", id).Scan(&key)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if key != "" {
			// New events of the key wait for this transaction; those
			// pending are locked, after any delivery in flight.
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock("+keyLockClass+", hashtext($1))", key); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "SELECT FROM outbox_events WHERE key = $1 AND state = 'pending' FOR UPDATE", key); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox_events
SET state = 'pending', attempts = 0, next_attempt_at = now(), dead_at = NULL
WHERE id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", notifyChannel); err != nil {
			return err
		}
		replayed = true
		return nil
	})
	return replayed, err
}
