package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// AllTopics subscribes a handler of a [Bus] to every topic.
const AllTopics = "*"

// maxPartial bounds how many partly delivered events a Bus remembers.
const maxPartial = 10000

// Bus is an in-process [Sink]: handlers subscribe by topic, and each event
// goes to each handler of its topic (and of [AllTopics]), in the order they
// subscribed. When some handlers fail, Deliver fails and the relay retries
// the event; the retry goes only to the handlers that have not had it yet
// (remembered in memory for up to 10000 events, so after a restart, or past
// that, a retry reaches every handler again: handlers must be idempotent,
// see [Once]).
//
// A Bus is safe for concurrent use; handlers may subscribe and unsubscribe
// while it delivers.
type Bus struct {
	mu      sync.Mutex
	subs    map[string][]*subscription
	next    int64
	partial map[int64]map[int64]bool // event id → ids of the subscriptions that had it
	order   []int64                  // partial's keys, oldest first
}

type subscription struct {
	id int64
	fn func(ctx context.Context, e Event) error
}

var _ Sink = (*Bus)(nil)

// NewBus returns a Bus without subscribers.
func NewBus() *Bus {
	return &Bus{subs: map[string][]*subscription{}, partial: map[int64]map[int64]bool{}}
}

// Subscribe adds fn for events of topic ([AllTopics]: every topic) and
// returns the function that removes it. fn's error makes the relay retry
// the event for fn.
func (b *Bus) Subscribe(topic string, fn func(ctx context.Context, e Event) error) (unsubscribe func(), err error) {
	if topic == "" {
		return nil, errors.New("outbox bus subscribe: topic must not be empty (AllTopics for every topic)")
	}
	if fn == nil {
		return nil, errors.New("outbox bus subscribe: handler must not be nil")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	s := &subscription{id: b.next, fn: fn}
	b.subs[topic] = append(b.subs[topic], s)
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		list := b.subs[topic]
		for i, x := range list {
			if x == s {
				b.subs[topic] = append(list[:i:i], list[i+1:]...)
				return
			}
		}
	}, nil
}

// Deliver hands e to every subscriber of its topic that has not had it yet.
// Without subscribers the event is delivered to nobody, successfully.
func (b *Bus) Deliver(ctx context.Context, e Event) error {
	b.mu.Lock()
	targets := append(append([]*subscription(nil), b.subs[e.Topic]...), b.subs[AllTopics]...)
	done := b.partial[e.ID]
	b.mu.Unlock()
	var errs []error
	var ok []int64
	for _, s := range targets {
		if done[s.id] {
			continue
		}
		if err := callHandler(ctx, s, e); err != nil {
			errs = append(errs, err)
			continue
		}
		ok = append(ok, s.id)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(errs) == 0 {
		delete(b.partial, e.ID) // order keeps a stale id until it is trimmed
		return nil
	}
	if b.partial[e.ID] == nil {
		b.partial[e.ID] = map[int64]bool{}
		b.order = append(b.order, e.ID)
		for len(b.order) > maxPartial {
			delete(b.partial, b.order[0])
			b.order = b.order[1:]
		}
	}
	for _, id := range ok {
		b.partial[e.ID][id] = true
	}
	return fmt.Errorf("outbox bus: %d of %d handlers failed: %w", len(errs), len(targets)-len(done), errors.Join(errs...))
}

func callHandler(ctx context.Context, s *subscription, e Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler %d panicked: %v", s.id, p)
		}
	}()
	return s.fn(ctx, e)
}
