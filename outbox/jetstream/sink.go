// Package jetstream is an outbox sink that publishes each event to NATS
// JetStream (github.com/nats-io/nats.go/jetstream) and waits for the
// stream's acknowledgement.
//
// The relay delivers at least once: an event whose delivery succeeded but
// whose mark was lost (a crash, a cut connection) is delivered again. The
// sink sends the event's id as the Nats-Msg-Id header, so a stream whose
// duplicate window (StreamConfig.Duplicates, see [EnsureStream]) covers the
// time until the redelivery stores the event once: JetStream acknowledges
// the second publish as a duplicate and drops it, and the sink counts it
// ([Sink.Duplicates]) and reports success. Consumers that must not see an
// event twice even past the window use the outbox inbox.
//
// The subject is the event's topic by default ("order.placed"), or what
// [WithSubjectPrefix] or [WithSubjects] make of it. Every message carries
// the event's headers and these of the sink's own:
//
//	Nats-Msg-Id        the event id ([WithMsgIDPrefix] puts a prefix before it)
//	Outbox-Topic       the event's topic
//	Outbox-Key         the event's key, when it has one
//	Outbox-Created-At  when the event was written (RFC 3339, UTC)
//
// An event header of one of these names is replaced by the sink's.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/outbox"
)

// Headers the sink sets on every message besides Nats-Msg-Id.
const (
	HeaderTopic     = "Outbox-Topic"
	HeaderKey       = "Outbox-Key"
	HeaderCreatedAt = "Outbox-Created-At"
)

// Sink publishes outbox events to JetStream. It is safe for concurrent use
// (relay workers share one).
type Sink struct {
	js       natsjs.JetStream
	subject  func(topic string) (string, error)
	idPrefix string
	stream   string

	published  atomic.Int64
	duplicates atomic.Int64
}

var _ outbox.Sink = (*Sink)(nil)

// Option configures [NewSink].
type Option interface{ apply(*Sink) error }

type optionFunc func(*Sink) error

func (f optionFunc) apply(s *Sink) error { return f(s) }

// WithSubjectPrefix publishes an event of topic T on subject prefix+T:
// WithSubjectPrefix("erp.") sends order.placed to erp.order.placed. It
// conflicts with [WithSubjects].
func WithSubjectPrefix(prefix string) Option {
	return optionFunc(func(s *Sink) error {
		if s.subject != nil {
			return errors.New("WithSubjectPrefix: the subject mapping is already set")
		}
		if prefix == "" {
			return errors.New("WithSubjectPrefix: prefix must not be empty")
		}
		if err := checkSubject(prefix + "x"); err != nil {
			return fmt.Errorf("WithSubjectPrefix(%q): %w", prefix, err)
		}
		s.subject = func(topic string) (string, error) { return prefix + topic, nil }
		return nil
	})
}

// WithSubjects maps each event's topic to the subject to publish it on; an
// error from f fails the delivery (and the relay retries it, then
// dead-letters it). It conflicts with [WithSubjectPrefix].
func WithSubjects(f func(topic string) (string, error)) Option {
	return optionFunc(func(s *Sink) error {
		if s.subject != nil {
			return errors.New("WithSubjects: the subject mapping is already set")
		}
		if f == nil {
			return errors.New("WithSubjects: func must not be nil")
		}
		s.subject = f
		return nil
	})
}

// WithMsgIDPrefix puts prefix before the event id in Nats-Msg-Id, so that
// several outboxes (databases, whose ids overlap) can share one stream:
// WithMsgIDPrefix("erp-") sends erp-42 for event 42.
func WithMsgIDPrefix(prefix string) Option {
	return optionFunc(func(s *Sink) error {
		if prefix == "" {
			return errors.New("WithMsgIDPrefix: prefix must not be empty")
		}
		s.idPrefix = prefix
		return nil
	})
}

// WithStream makes every publish expect the stream of that name
// (Nats-Expected-Stream): a subject that no stream, or another stream,
// captures fails the delivery instead of landing elsewhere.
func WithStream(name string) Option {
	return optionFunc(func(s *Sink) error {
		if name == "" {
			return errors.New("WithStream: name must not be empty")
		}
		s.stream = name
		return nil
	})
}

// NewSink returns a Sink publishing through js. Every bad option is
// reported, together.
func NewSink(js natsjs.JetStream, opts ...Option) (*Sink, error) {
	var errs []error
	if js == nil {
		errs = append(errs, errors.New("jetstream must not be nil"))
	}
	s := &Sink{js: js}
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		if err := o.apply(s); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new jetstream sink: %w", err)
	}
	if s.subject == nil {
		s.subject = func(topic string) (string, error) { return topic, nil }
	}
	return s, nil
}

// Deliver publishes e and waits for JetStream's acknowledgement, until ctx
// ends (or, when ctx has no deadline, the JetStream context's default
// timeout). A publish JetStream acknowledges as a duplicate of a message it
// holds succeeds. The error names the event and the subject; it never holds
// a credential of the connection.
func (s *Sink) Deliver(ctx context.Context, e outbox.Event) error {
	subject, err := s.subject(e.Topic)
	if err == nil {
		err = checkSubject(subject)
	}
	if err != nil {
		return fmt.Errorf("jetstream: event %d: subject of topic %q: %w", e.ID, e.Topic, err)
	}
	msg := nats.NewMsg(subject)
	for k, v := range e.Headers {
		msg.Header.Set(k, v)
	}
	msg.Header.Set(HeaderTopic, e.Topic)
	msg.Header.Del(HeaderKey)
	if e.Key != "" {
		msg.Header.Set(HeaderKey, e.Key)
	}
	msg.Header.Del(HeaderCreatedAt)
	if !e.CreatedAt.IsZero() {
		msg.Header.Set(HeaderCreatedAt, e.CreatedAt.UTC().Format(time.RFC3339Nano))
	}
	msg.Data = e.Payload
	opts := []natsjs.PublishOpt{natsjs.WithMsgID(s.MsgID(e.ID))}
	if s.stream != "" {
		opts = append(opts, natsjs.WithExpectStream(s.stream))
	}
	ack, err := s.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return secret.Error(fmt.Errorf("jetstream: publish event %d to %s: %w", e.ID, subject, err))
	}
	if ack.Duplicate {
		s.duplicates.Add(1)
	} else {
		s.published.Add(1)
	}
	return nil
}

// MsgID is the Nats-Msg-Id the sink sends for event id.
func (s *Sink) MsgID(id int64) string { return s.idPrefix + strconv.FormatInt(id, 10) }

// Published counts the events JetStream stored through this sink.
func (s *Sink) Published() int64 { return s.published.Load() }

// Duplicates counts the deliveries JetStream acknowledged as duplicates of a
// message it held (redeliveries within the duplicate window), and dropped.
func (s *Sink) Duplicates() int64 { return s.duplicates.Load() }

// checkSubject refuses what NATS cannot publish on: an empty subject or
// token, white space, or a wildcard.
func checkSubject(subject string) error {
	if subject == "" {
		return errors.New("empty subject")
	}
	if strings.ContainsAny(subject, " \t\r\n") {
		return fmt.Errorf("subject %q contains white space", subject)
	}
	for tok := range strings.SplitSeq(subject, ".") {
		switch tok {
		case "":
			return fmt.Errorf("subject %q has an empty token", subject)
		case "*", ">":
			return fmt.Errorf("subject %q has a wildcard: publish needs a literal subject", subject)
		}
	}
	return nil
}
