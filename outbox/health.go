package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Stats counts the outbox's events by state.
type Stats struct {
	Pending          int64         // not yet delivered nor dead
	Ready            int64         // pending and due (not waiting for a retry)
	Dead             int64         // dead-lettered, waiting for Replay
	OldestPendingAge time.Duration // 0 when nothing is pending
	OldestReadyAge   time.Duration // age of the oldest due event; 0 when none
}

const statsSQL = `SELECT
    count(*) FILTER (WHERE state = 'pending'),
    count(*) FILTER (WHERE state = 'pending' AND next_attempt_at <= now()),
    count(*) FILTER (WHERE state = 'dead'),
    coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'pending')), 0)::float8,
    coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'pending' AND next_attempt_at <= now())), 0)::float8
FROM outbox_events WHERE state IN ('pending', 'dead')`

// ReadStats counts the outbox's events in pool's database.
func ReadStats(ctx context.Context, pool *pgxpool.Pool) (Stats, error) {
	if pool == nil {
		return Stats{}, errors.New("outbox stats: pool must not be nil")
	}
	var s Stats
	var oldest, ready float64
	if err := pool.QueryRow(ctx, statsSQL).Scan(&s.Pending, &s.Ready, &s.Dead, &oldest, &ready); err != nil {
		return Stats{}, fmt.Errorf("outbox stats: %w", err)
	}
	s.OldestPendingAge = time.Duration(oldest * float64(time.Second))
	s.OldestReadyAge = time.Duration(ready * float64(time.Second))
	return s, nil
}

// Health is a relay's state as [Relay.Health] reports it.
type Health struct {
	Stats
	Running   bool      // Run is running
	Listening bool      // notifications arrive; false: polling only
	ListenErr string    // why Listening is false, "" when it is true
	LastRound time.Time // when a worker last finished a round (claimed nothing or committed its marks)
	// Stuck: an event has been ready for longer than WithStuckAfter, so no
	// relay is delivering it (none running, a Deliver hanging on it, or a
	// backlog larger than the relays can handle).
	Stuck bool
}

// ErrStuck reports a relay that is not delivering: see [Health.Stuck].
var ErrStuck = errors.New("outbox: relay is stuck")

// Health reports the relay's state and the outbox's counts. Its error is
// [ErrStuck] (with the numbers) when the relay is stuck, or the database's
// when the counts cannot be read; a readiness probe can fail on any error.
func (r *Relay) Health(ctx context.Context) (Health, error) {
	h := Health{
		Running:   r.running.Load(),
		Listening: r.listening.Load(),
		LastRound: time.Unix(0, r.lastRound.Load()),
	}
	if !h.Listening {
		h.ListenErr, _ = r.listenFailed.Load().(string)
		if h.ListenErr == "" {
			h.ListenErr = "not listening (Run is not running, or LISTEN is starting)"
		}
	}
	st, err := ReadStats(ctx, r.pool)
	if err != nil {
		return h, err
	}
	h.Stats = st
	if st.OldestReadyAge > r.cfg.stuckAfter {
		h.Stuck = true
		return h, fmt.Errorf("%w: %d events ready, the oldest for %v (more than %v); this relay's last round finished %v ago (is Run running? a Deliver hanging?)",
			ErrStuck, st.Ready, st.OldestReadyAge.Round(time.Millisecond), r.cfg.stuckAfter, time.Since(h.LastRound).Round(time.Millisecond))
	}
	return h, nil
}
