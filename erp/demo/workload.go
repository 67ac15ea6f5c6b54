package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/cortexerp/datalayer/erp"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

// Options shape a simulation; a zero field takes its default.
type Options struct {
	Orders    int       // order requests, replays included (default 300)
	Workers   int       // concurrent clients (default 8)
	Relays    int       // outbox relays running meanwhile (default 2)
	Customers int       // customers to seed (default 20)
	Products  int       // products to seed (default 50)
	Seed      uint64    // seeds every random choice: same seed, same requests
	Tag       string    // prefix of the seeded names and keys (default: from the clock)
	Progress  io.Writer // gets a line every sixth of the orders (default: none)
	// JetStream, when set, gets every event before the in-process
	// subscriber does (a JetStream sink, say).
	JetStream outbox.Sink
	// LoseMarks makes the first delivery of every LoseMarks-th event fail
	// after the sinks took it, as a relay does whose mark never reaches the
	// database: the event is delivered again, and the sinks must keep it
	// once (default 10; negative: none).
	LoseMarks int
	// Logger gets the relays' logs (default: errors to stderr; the retries
	// of lost marks are warnings).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Orders, 300)
	def(&o.Workers, 8)
	def(&o.Relays, 2)
	def(&o.Customers, 20)
	def(&o.Products, 50)
	if o.LoseMarks == 0 {
		o.LoseMarks = 10
	}
	if o.Tag == "" {
		o.Tag = NewTag()
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	return o
}

// NewTag returns a tag from the clock, as Simulate picks one.
func NewTag() string { return "d" + strconv.FormatInt(time.Now().UnixMilli()%1e9, 36) }

// Result is what a simulation did, as its clients saw it.
type Result struct {
	Options  Options  // with defaults applied
	Catalog  Catalog  // what was seeded
	Outcomes Outcomes // what became of the order requests
	Retries  int64    // attempts the units of work replayed
	// Deliveries counts the times the in-process subscriber was handed each
	// event, by event ID: 2 or more for an event whose mark was lost (or
	// whose relay stopped before marking it).
	Deliveries map[int64]int
	// Processed counts the times the subscriber processed each event, by
	// event ID, its redeliveries skipped by the inbox: 1 each, among all the
	// simulations sharing the database.
	Processed map[int64]int
	// LostMarks counts the deliveries failed on purpose after the sinks took
	// the event (see Options.LoseMarks).
	LostMarks int
	// OutOfOrder counts the events the subscriber processed after a later
	// event of their key (an order's): 0.
	OutOfOrder int
	Elapsed    time.Duration // workload and delivery, seeding excluded
}

// Outcomes counts order requests by what became of them.
type Outcomes struct {
	Requests      int // sent, replays included
	Placed        int // created an order
	Replayed      int // got the order already placed under their idempotency key
	OutOfStock    int // refused: the stock could not cover an item
	Discounted    int // placed with their coupon applied
	CouponRefused int // placed without their coupon (unknown, expired or used up)
	Paid          int // placed orders then paid
	Cancelled     int // placed orders then cancelled (some after payment)
}

// plan is one client's request and what it does with the order.
type plan struct {
	req         erp.OrderRequest
	resend      bool // sends the request twice, like a client whose first reply was lost
	pay, cancel bool
}

// Simulate seeds a catalog and runs a concurrent workload against svc: many
// clients placing orders (some refused for stock, some with coupons that do
// not apply, some sent twice or by two clients at once with one idempotency
// key), paying and cancelling some, while outbox relays deliver the events
// to JetStream (when Options.JetStream is set) and to an in-process
// subscriber. When it returns, every event is delivered. The database needs
// the outbox's migrations (outbox.Migrate) besides the application's. An unexpected error stops it.
func Simulate(ctx context.Context, svc *erp.Service, opts Options) (Result, error) {
	opts = opts.withDefaults()
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed))
	seeding := time.Now()
	catalog, err := Seed(ctx, svc, rng, opts.Tag, opts.Customers, opts.Products)
	if err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}
	units := 0
	for _, n := range catalog.Initial {
		units += int(n)
	}
	_, _ = fmt.Fprintf(opts.Progress, "seeded %d customers, %d products (%d units in stock), 3 coupons in %.2fs\n",
		len(catalog.Customers), len(catalog.Products), units, time.Since(seeding).Seconds())
	s := &simulation{svc: svc, opts: opts, keys: map[string]int64{}, delivered: map[int64]int{}, processed: map[int64]int{}, lastOfKey: map[string]int64{}}
	plans := makePlans(rng, catalog, opts)
	if s.bus, err = s.newBus(svc.Pool()); err != nil {
		return Result{}, err
	}
	retriesBefore := svc.Retries()
	s.start = time.Now()

	relayOpts := []outbox.RelayOption{
		outbox.WithWorkers(relayWorkers),
		outbox.WithBackoff(5*time.Millisecond, 50*time.Millisecond),
		outbox.WithLogger(opts.Logger),
	}
	relayCtx, stopRelays := context.WithCancel(ctx)
	var relays sync.WaitGroup
	for range opts.Relays {
		r, err := svc.NewRelay(outbox.SinkFunc(s.deliver), relayOpts...)
		if err != nil {
			stopRelays()
			return Result{}, err
		}
		relays.Go(func() { _ = r.Run(relayCtx) })
	}
	err = s.run(ctx, plans)
	stopRelays()
	relays.Wait()
	if err != nil {
		return Result{}, err
	}
	// Deliver what the running relays left (those woken last, and the
	// retries of lost marks).
	flush, err := svc.NewRelay(outbox.SinkFunc(s.deliver), relayOpts...)
	if err != nil {
		return Result{}, err
	}
	if err := drain(ctx, flush, svc); err != nil {
		return Result{}, fmt.Errorf("deliver the rest: %w", err)
	}
	return Result{
		Options:    opts,
		Catalog:    catalog,
		Outcomes:   s.out,
		Retries:    svc.Retries() - retriesBefore,
		Deliveries: s.delivered,
		Processed:  s.processed,
		LostMarks:  s.lostMarks,
		OutOfOrder: s.outOfOrder,
		Elapsed:    time.Since(s.start),
	}, nil
}

// makePlans draws every request up front, so that the seed alone decides
// them, whatever the interleaving of the workers.
func makePlans(rng *rand.Rand, c Catalog, opts Options) []plan {
	plans := make([]plan, opts.Orders)
	for i := range plans {
		if i >= 8 && rng.IntN(25) == 0 {
			// Another client sends a recent request again, concurrently.
			plans[i] = plan{req: plans[i-1-rng.IntN(8)].req}
			continue
		}
		req := erp.OrderRequest{
			CustomerID:     c.Customers[rng.IntN(len(c.Customers))],
			IdempotencyKey: fmt.Sprintf("%s-order-%d", opts.Tag, i+1),
		}
		seen := map[int64]bool{}
		for range 1 + rng.IntN(4) {
			// A third of the picks go to the ten best sellers, which sell out.
			id := c.Products[rng.IntN(len(c.Products))]
			if rng.IntN(3) == 0 {
				id = c.Products[rng.IntN(min(10, len(c.Products)))]
			}
			if !seen[id] {
				seen[id] = true
				req.Items = append(req.Items, erp.Item{ProductID: id, Quantity: 1 + rng.Int32N(3) + rng.Int32N(2)*rng.Int32N(4)})
			}
		}
		switch r := rng.IntN(100); {
		case r < 15:
			req.CouponCode = c.Live
		case r < 25:
			req.CouponCode = c.Scarce
		case r < 30:
			req.CouponCode = c.Expired
		case r < 33:
			req.CouponCode = c.Unknown
		}
		p := plan{req: req, resend: rng.IntN(20) == 0}
		switch r := rng.IntN(100); {
		case r < 45:
			p.pay = true
		case r < 52:
			p.pay, p.cancel = true, true
		case r < 60:
			p.cancel = true
		}
		plans[i] = p
	}
	return plans
}

// simulation is the shared state of the workers.
type simulation struct {
	svc   *erp.Service
	opts  Options
	start time.Time
	bus   *outbox.Bus // the relays' in-process sink

	mu         sync.Mutex
	out        Outcomes
	done       int              // plans finished
	keys       map[string]int64 // idempotency key → order ID
	delivered  map[int64]int    // deliveries to the subscriber, by event ID
	processed  map[int64]int    // events the subscriber processed, by event ID
	lastOfKey  map[string]int64 // the last event processed of each key
	lostMarks  int
	outOfOrder int // events processed after a later one of their key
}

func (s *simulation) run(ctx context.Context, plans []plan) error {
	g, ctx := errgroup.WithContext(ctx)
	work := make(chan plan)
	g.Go(func() error {
		defer close(work)
		for _, p := range plans {
			select {
			case work <- p:
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	})
	for range s.opts.Workers {
		g.Go(func() error {
			for p := range work {
				if err := s.execute(ctx, p); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// execute sends a plan's request (twice if it says so) and pays or cancels
// the order it placed.
func (s *simulation) execute(ctx context.Context, p plan) error {
	sends := 1
	if p.resend {
		sends = 2
	}
	for range sends {
		o, err := s.svc.PlaceOrder(ctx, p.req)
		if errors.Is(err, erp.ErrOutOfStock) {
			s.count(func(out *Outcomes) { out.Requests++; out.OutOfStock++ })
			continue
		}
		if err != nil {
			return err
		}
		replay, err := s.claimKey(p.req.IdempotencyKey, o.ID)
		if err != nil {
			return err
		}
		if replay {
			s.count(func(out *Outcomes) { out.Requests++; out.Replayed++ })
			continue
		}
		s.count(func(out *Outcomes) {
			out.Requests++
			out.Placed++
			switch {
			case o.CouponCode != "":
				out.Discounted++
			case p.req.CouponCode != "":
				out.CouponRefused++
			}
		})
		if p.pay {
			if _, err := s.svc.PayOrder(ctx, o.ID); err != nil {
				return err
			}
			s.count(func(out *Outcomes) { out.Paid++ })
		}
		if p.cancel {
			if _, err := s.svc.CancelOrder(ctx, o.ID); err != nil {
				return err
			}
			s.count(func(out *Outcomes) { out.Cancelled++ })
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done++
	if every := max(s.opts.Orders/6, 1); s.done%every == 0 || s.done == s.opts.Orders {
		_, _ = fmt.Fprintf(s.opts.Progress, "  %4d/%d orders   placed %d, replayed %d, out of stock %d   %.2fs\n",
			s.done, s.opts.Orders, s.out.Placed, s.out.Replayed, s.out.OutOfStock, time.Since(s.start).Seconds())
	}
	return nil
}

// claimKey records the order a key got and reports whether it was a replay
// (the same order came back again). Two orders for one key are an error.
func (s *simulation) claimKey(key string, orderID int64) (replay bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, seen := s.keys[key]
	if !seen {
		s.keys[key] = orderID
		return false, nil
	}
	if prev != orderID {
		return false, fmt.Errorf("idempotency key %s gave two orders: %d and %d", key, prev, orderID)
	}
	return true, nil
}

func (s *simulation) count(f func(*Outcomes)) {
	s.mu.Lock()
	f(&s.out)
	s.mu.Unlock()
}

// relayWorkers is each relay's worker count.
const relayWorkers = 2

// RelayConns is how many pooled connections the relays of a simulation
// with opts use at most: per relay its LISTEN connection, and per worker
// its claim transaction and the subscriber's unit of work.
func RelayConns(opts Options) int { return max(opts.withDefaults().Relays, 1) * (2*relayWorkers + 1) }

// subscriber is the in-process consumer's name in the outbox inbox.
const subscriber = "erp-demo-subscriber"

// newBus returns the in-process bus the relays deliver to, with one
// subscriber of every topic: an idempotent consumer (outbox.Once) that
// counts each delivery, and processes an event, in a unit of work that
// records it in the inbox, only the first time. Simulations sharing a
// database share the inbox, so each event is processed once among them.
func (s *simulation) newBus(pool *pgxpool.Pool) (*outbox.Bus, error) {
	u := uow.New(pool, func(db uow.DBTX) uow.DBTX { return db })
	process := outbox.Once(u, subscriber, func(ctx context.Context, _ uow.DBTX, e outbox.Event) error {
		uow.AfterCommit(ctx, func(context.Context) { // the effect: counted once committed
			s.mu.Lock()
			s.processed[e.ID]++
			if e.ID <= s.lastOfKey[e.Key] {
				s.outOfOrder++
			}
			s.lastOfKey[e.Key] = e.ID
			s.mu.Unlock()
		})
		return nil
	})
	bus := outbox.NewBus()
	_, err := bus.Subscribe(outbox.AllTopics, func(ctx context.Context, e outbox.Event) error {
		s.mu.Lock()
		s.delivered[e.ID]++
		s.mu.Unlock()
		return process(ctx, e)
	})
	return bus, err
}

// deliver is the relays' sink: JetStream first (when set), then the bus;
// then, for every LoseMarks-th event on its first attempt, a failure as if
// the mark were lost.
func (s *simulation) deliver(ctx context.Context, e outbox.Event) error {
	if s.opts.JetStream != nil {
		if err := s.opts.JetStream.Deliver(ctx, e); err != nil {
			return err
		}
	}
	if err := s.bus.Deliver(ctx, e); err != nil {
		return err
	}
	if s.opts.LoseMarks > 0 && e.ID%int64(s.opts.LoseMarks) == 0 && e.Attempt == 1 {
		s.mu.Lock()
		s.lostMarks++
		s.mu.Unlock()
		return errLostMark
	}
	return nil
}

// errLostMark is the failure of a delivery whose mark is lost on purpose.
var errLostMark = errors.New("demo: the mark of this delivery is lost on purpose")

// drain delivers until no event is pending in the database: Drain leaves
// the events waiting for a retry, so it runs again until they are done.
func drain(ctx context.Context, r *outbox.Relay, svc *erp.Service) error {
	for {
		if _, err := r.Drain(ctx); err != nil {
			return err
		}
		st, err := outbox.ReadStats(ctx, svc.Pool())
		if err != nil {
			return fmt.Errorf("count pending events: %w", err)
		}
		if st.Pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d events still pending: %w", st.Pending, ctx.Err())
		case <-time.After(10 * time.Millisecond): // the retry backoff of a lost mark
		}
	}
}
