package outbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/internal/secret"
)

// Relay hands committed events to a [Sink], at least once. Each worker
// claims, in a transaction of its own, up to a batch of ready events that
// head their key (no earlier pending event of the same key), with FOR
// UPDATE SKIP LOCKED; it delivers them and marks each delivered, retried or
// dead in that same transaction. A crash before COMMIT releases the rows:
// they are delivered again. Several relays, in one process or many, share
// the work, and no two ever hold one event, or two events of one key, at
// once.
//
// A Relay is safe for concurrent use; Run runs once at a time.
type Relay struct {
	pool    *pgxpool.Pool
	sink    Sink
	cfg     relayConfig
	obs     *observer
	running atomic.Bool

	wakeMu sync.Mutex
	wakes  []chan struct{} // one per running worker, capacity 1

	listening    atomic.Bool  // LISTEN is up and its probe came back
	lastRound    atomic.Int64 // unix nanos of the last finished round
	nextRetry    atomic.Int64 // unix nanos of the earliest retry this relay scheduled; 0 none
	listenFailed atomic.Value // string: why notifications are not used

	rounds atomic.Uint64 // claims made: odd ones take keyed events first, even ones unkeyed

	walkMu  sync.Mutex
	walkEnd string // the key of the last keyed event claimed: the next claim's walk starts after it
}

// NewRelay returns a relay delivering the events in pool's database (see
// [Migrate]) to sink. Start it with [Relay.Run], or deliver what is ready
// with [Relay.Drain].
func NewRelay(pool *pgxpool.Pool, sink Sink, opts ...RelayOption) (*Relay, error) {
	var errs []error
	if pool == nil {
		errs = append(errs, errors.New("pool must not be nil"))
	}
	if sink == nil {
		errs = append(errs, errors.New("sink must not be nil"))
	}
	cfg, err := newRelayConfig(opts)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new relay: %w", err)
	}
	r := &Relay{pool: pool, sink: sink, cfg: cfg}
	r.lastRound.Store(time.Now().UnixNano())
	if r.obs, err = newObserver(r); err != nil {
		return nil, fmt.Errorf("new relay: %w", err)
	}
	return r, nil
}

// ErrRunning reports a second Run of a relay that is running.
var ErrRunning = errors.New("outbox: relay is already running")

// Run delivers events until ctx ends, then returns nil once every worker
// finished its round (a round cut short is rolled back: its events are
// delivered again later). Database errors are logged and retried after the
// poll interval, never returned.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	var wg sync.WaitGroup
	wakes := make([]chan struct{}, r.cfg.workers)
	for i := range wakes {
		wakes[i] = make(chan struct{}, 1)
	}
	r.wakeMu.Lock()
	r.wakes = wakes
	r.wakeMu.Unlock()
	if r.cfg.listen {
		wg.Go(func() { r.listen(ctx) })
	} else {
		r.listenFailed.Store("disabled (WithoutListen)")
	}
	for i := range wakes {
		wg.Go(func() { r.work(ctx, wakes[i]) })
	}
	wg.Wait()
	r.wakeMu.Lock()
	r.wakes = nil
	r.wakeMu.Unlock()
	return nil
}

// wakeAll makes every idle worker look for events now.
func (r *Relay) wakeAll() {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	for _, w := range r.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

func (r *Relay) work(ctx context.Context, wake <-chan struct{}) {
	for ctx.Err() == nil {
		n, err := r.round(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.logger.WarnContext(ctx, "outbox relay round failed", "relay", r.cfg.name,
				"error", secret.Error(err, r.pool.Config().ConnConfig.Password).Error())
		}
		if n > 0 && err == nil {
			continue // more may be ready: the next events of the keys just delivered
		}
		wait := r.cfg.pollInterval
		if next := r.nextRetry.Load(); next != 0 {
			d := time.Until(time.Unix(0, next))
			if d <= 0 {
				// A retry this relay scheduled is due: one worker takes
				// it now, and the next retry is learnt from later rounds.
				if r.nextRetry.CompareAndSwap(next, 0) {
					continue
				}
			} else if d < wait {
				wait = d
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Drain delivers every event ready now, one round after another on the
// calling goroutine, until a round finds none; events waiting for a retry
// stay. It returns how many events it delivered. For tests, demos and
// one-shot jobs; it may run beside Run and other relays.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, delivered, err := r.roundCount(ctx)
		total += delivered
		if err != nil {
			return total, fmt.Errorf("outbox drain: %w", err)
		}
		if n == 0 {
			return total, nil
		}
	}
}

// The claim takes up to $1 ready events that head their key: the oldest
// pending event of the key, so per key only the oldest is ever claimed, and
// while a relay holds it (its row lock, until COMMIT) or waits for its retry,
// the key's later events wait. The ids of one key are in commit order (see
// publishSQL), and no position in the id sequence is remembered between
// rounds, so an event committed after a higher id was delivered is claimed
// like any other.
//
// It finds the heads by walking the keys that have pending events (a skip
// scan of outbox_events_pending_key_idx: one index descent per key, each
// returning the key's lowest pending id), in key order starting after $2
// (the key the relay's last walk ended at) and wrapping round to the first
// key, and stops as soon as $1 heads are locked. Its cost is one descent per
// key visited, about $1 plus the keys whose head is in flight or waiting for
// a retry, whatever the depth of the queues behind them. Events of key ""
// have no order: they are taken oldest first, before or after the keyed ones
// (claimKeyedFirstSQL and claimUnkeyedFirstSQL alternate), so neither kind
// starves the other.
const (
	claimHeadsSQL = `WITH RECURSIVE
after AS (
    (SELECT key, id FROM outbox_events WHERE state = 'pending' AND key > $2 ORDER BY key, id LIMIT 1)
    UNION ALL
    SELECT n.key, n.id FROM after w CROSS JOIN LATERAL (
        SELECT key, id FROM outbox_events WHERE state = 'pending' AND key > w.key ORDER BY key, id LIMIT 1) n),
upto AS (
    (SELECT key, id FROM outbox_events WHERE state = 'pending' AND key > '' AND key <= $2 ORDER BY key, id LIMIT 1)
    UNION ALL
    SELECT n.key, n.id FROM upto w CROSS JOIN LATERAL (
        SELECT key, id FROM outbox_events WHERE state = 'pending' AND key > w.key AND key <= $2 ORDER BY key, id LIMIT 1) n),
keyed AS (
    SELECT e.* FROM (SELECT id FROM after UNION ALL SELECT id FROM upto) h
    CROSS JOIN LATERAL (
        SELECT id, topic, key, payload, headers, created_at, attempts FROM outbox_events
        WHERE id = h.id AND state = 'pending' AND next_attempt_at <= now()
        FOR UPDATE SKIP LOCKED) e),
unkeyed AS (
    SELECT id, topic, key, payload, headers, created_at, attempts FROM outbox_events
    WHERE state = 'pending' AND key = '' AND next_attempt_at <= now()
    ORDER BY id
    FOR UPDATE SKIP LOCKED)
`
	claimKeyedFirstSQL   = claimHeadsSQL + "SELECT * FROM keyed UNION ALL SELECT * FROM unkeyed LIMIT $1"
	claimUnkeyedFirstSQL = claimHeadsSQL + "SELECT * FROM unkeyed UNION ALL SELECT * FROM keyed LIMIT $1"
)

const (
	markDeliveredSQL = `UPDATE outbox_events
SET state = 'delivered', delivered_at = now(), attempts = attempts + 1, last_error = NULL
WHERE id = $1`
	markRetrySQL = `UPDATE outbox_events
SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + $3::interval
WHERE id = $1`
	markDeadSQL = `UPDATE outbox_events
SET state = 'dead', dead_at = now(), attempts = attempts + 1, last_error = $2
WHERE id = $1`
)

// maxErrorLen bounds the last error kept per event.
const maxErrorLen = 2000

func (r *Relay) round(ctx context.Context) (int, error) {
	n, _, err := r.roundCount(ctx)
	return n, err
}

// roundCount runs one claim-deliver-mark transaction and returns how many
// events it claimed and how many of them were delivered.
func (r *Relay) roundCount(ctx context.Context) (claimed, delivered int, err error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	claim := claimKeyedFirstSQL
	if r.rounds.Add(1)%2 == 0 {
		claim = claimUnkeyedFirstSQL
	}
	rows, err := tx.Query(ctx, claim, r.cfg.batchSize, r.walkFrom())
	if err != nil {
		return 0, 0, fmt.Errorf("claim: %w", err)
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return 0, 0, fmt.Errorf("claim: %w", err)
	}
	r.walkedTo(events)
	if len(events) == 0 {
		r.lastRound.Store(time.Now().UnixNano())
		return 0, 0, tx.Rollback(ctx)
	}
	b := &pgx.Batch{}
	var outcomes []outcome
	for _, e := range events {
		o := r.deliver(ctx, e)
		outcomes = append(outcomes, o)
		switch {
		case o.err == nil:
			b.Queue(markDeliveredSQL, e.ID)
		case o.dead:
			b.Queue(markDeadSQL, e.ID, errorText(o.err))
		default:
			b.Queue(markRetrySQL, e.ID, errorText(o.err), o.backoff)
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return len(events), 0, fmt.Errorf("mark: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return len(events), 0, fmt.Errorf("commit marks: %w", err)
	}
	r.lastRound.Store(time.Now().UnixNano())
	for i, o := range outcomes {
		r.obs.recorded(ctx, events[i], o)
		if o.err == nil {
			delivered++
		} else if !o.dead {
			r.scheduleRetry(time.Now().Add(o.backoff))
		}
	}
	return len(events), delivered, nil
}

// walkFrom is the key after which the next claim walks the keys.
func (r *Relay) walkFrom() string {
	r.walkMu.Lock()
	defer r.walkMu.Unlock()
	return r.walkEnd
}

// walkedTo moves the start of the next walk past the last keyed event
// claimed (events are in walk order), so that the relay visits the keys
// round robin; a claim of no keyed event leaves it.
func (r *Relay) walkedTo(events []Event) {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Key != "" {
			r.walkMu.Lock()
			r.walkEnd = events[i].Key
			r.walkMu.Unlock()
			return
		}
	}
}

// scheduleRetry remembers the earliest retry, so an idle worker wakes for
// it; the worker that takes it clears it.
func (r *Relay) scheduleRetry(at time.Time) {
	for {
		old := r.nextRetry.Load()
		if old != 0 && old <= at.UnixNano() {
			return
		}
		if r.nextRetry.CompareAndSwap(old, at.UnixNano()) {
			return
		}
	}
}

// outcome is what came of one delivery.
type outcome struct {
	err     error
	dead    bool          // err and the last attempt
	backoff time.Duration // err and not dead: wait before the next attempt
	took    time.Duration
}

// deliver calls the sink with a bounded ctx, turning a panic into an error.
func (r *Relay) deliver(ctx context.Context, e Event) (o outcome) {
	ctx, span := r.obs.startDeliver(ctx, e)
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			o.err = fmt.Errorf("sink panicked: %v", p)
		}
		o.took = time.Since(start)
		if o.err != nil {
			if e.Attempt >= r.cfg.maxAttempts {
				o.dead = true
			} else {
				o.backoff = r.backoff(e.Attempt)
			}
		}
		r.obs.endDeliver(ctx, span, e, o)
	}()
	dctx, cancel := context.WithTimeout(ctx, r.cfg.sinkTimeout)
	defer cancel()
	o.err = r.sink.Deliver(dctx, e)
	return o
}

// backoff is the wait after failed attempt n (1-based): full jitter over
// base·2^(n-1), capped at max. (Computed here rather than with go-retry,
// whose backoffs are stateful sequences: a relay only knows the attempt
// number, read from the row.)
func (r *Relay) backoff(n int) time.Duration {
	d := r.cfg.backoffBase
	for i := 1; i < n && d < r.cfg.backoffMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.backoffMax)
	return d/2 + rand.N(d/2+1) // at least half, so a failing key cannot spin
}

// errorText is err as kept in last_error and logged: a password in a URL
// it quotes masked, and bounded.
func errorText(err error) string {
	s := secret.Text(err.Error())
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen] + "…"
	}
	return s
}

func scanEvent(row pgx.CollectableRow) (Event, error) {
	var e Event
	var attempts int
	var headers map[string]string
	if err := row.Scan(&e.ID, &e.Topic, &e.Key, &e.Payload, &headers, &e.CreatedAt, &attempts); err != nil {
		return Event{}, err
	}
	if len(headers) > 0 {
		e.Headers = headers
	}
	e.Attempt = attempts + 1
	return e, nil
}
