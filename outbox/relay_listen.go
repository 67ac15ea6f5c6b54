package outbox

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cortexerp/datalayer/internal/secret"
)

// notifyChannel is the channel the outbox_events trigger notifies at COMMIT.
const notifyChannel = "outbox_events"

// Waits of the listener: before replacing a broken connection (or the poll
// interval, when shorter), and before probing again once notifications
// were found not to arrive.
const (
	listenReconnect = 5 * time.Second
	listenReprobe   = time.Minute
)

// listen keeps a dedicated connection (outside the pool) LISTENing and wakes
// the workers on each notification. After each LISTEN it proves that
// notifications arrive by sending itself one (through the pool, as a
// publisher would); when it does not come back in time (PgBouncer in
// transaction mode forwards none) the relay polls, and probes again a
// minute later. A broken connection is replaced after 5 s (or the poll
// interval, when shorter).
func (r *Relay) listen(ctx context.Context) {
	for ctx.Err() == nil {
		ok := r.listenOnce(ctx)
		r.listening.Store(false)
		wait := min(r.cfg.pollInterval, listenReconnect)
		if !ok {
			wait = listenReprobe
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// listenOnce runs one LISTEN session until its connection fails or ctx ends.
// It returns false when notifications were found not to arrive.
func (r *Relay) listenOnce(ctx context.Context) bool {
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		r.listenDown(ctx, fmt.Errorf("connect: %w", secret.Error(err, r.pool.Config().ConnConfig.Password)))
		return true
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		r.listenDown(ctx, fmt.Errorf("listen: %w", err))
		return true
	}
	probe := "probe:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := r.pool.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, probe); err != nil {
		r.listenDown(ctx, fmt.Errorf("send probe notification: %w", err))
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.listenProbe)
	for {
		n, err := conn.WaitForNotification(pctx)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return true
			}
			why := fmt.Sprintf("the probe notification did not arrive within %v (PgBouncer in transaction mode?): polling every %v; use WithoutListen to say so", r.cfg.listenProbe, r.cfg.pollInterval)
			if prev, _ := r.listenFailed.Swap(why).(string); prev != why { // once, not at every probe
				r.cfg.logger.WarnContext(ctx, "outbox relay cannot receive notifications", "relay", r.cfg.name, "reason", why)
			}
			return false
		}
		if n.Payload == probe {
			break
		}
	}
	cancel()
	r.listening.Store(true)
	r.listenFailed.Store("")
	r.wakeAll() // events committed before LISTEN took effect
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if ctx.Err() == nil {
				r.listenDown(ctx, fmt.Errorf("wait for notification: %w", err))
			}
			return true
		}
		r.wakeAll()
	}
}

func (r *Relay) listenDown(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	r.listenFailed.Store("listen connection: " + err.Error())
	r.cfg.logger.WarnContext(ctx, "outbox relay listen connection failed; polling until it is back",
		"relay", r.cfg.name, "error", err)
}
