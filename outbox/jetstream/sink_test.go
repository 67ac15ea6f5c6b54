package jetstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/localnats/localnatstest"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/outbox/jetstream"
)

// testTimeout bounds each test's work against nats-server.
const testTimeout = 30 * time.Second

// natsFixture is a nats-server of the test's own, a connection and a stream
// ORDERS on order.> (its duplicate window the default).
type natsFixture struct {
	url    string
	js     natsjs.JetStream
	stream natsjs.Stream
}

func newNATS(t testing.TB, subjects ...string) natsFixture {
	t.Helper()
	srv := localnatstest.Start(t)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	if len(subjects) == 0 {
		subjects = []string{"order.>"}
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	st, err := jetstream.EnsureStream(ctx, js, natsjs.StreamConfig{Name: "ORDERS", Subjects: subjects})
	require.NoError(t, err)
	return natsFixture{url: srv.URL(), js: js, stream: st}
}

// messages reads every message of the stream, in order.
func (f natsFixture) messages(t *testing.T) []*natsjs.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	info, err := f.stream.Info(ctx)
	require.NoError(t, err)
	var msgs []*natsjs.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := f.stream.GetMsg(ctx, seq)
		require.NoError(t, err)
		msgs = append(msgs, m)
	}
	return msgs
}

func event(id int64, topic, key string) outbox.Event {
	return outbox.Event{
		ID: id, Topic: topic, Key: key,
		Payload:   fmt.Appendf(nil, `{"order_id":%d}`, id),
		Headers:   map[string]string{"Trace-Parent": "00-abc-01"},
		CreatedAt: time.Date(2026, 12, 1, 22, 0, 0, 123, time.FixedZone("CET", 3600)),
		Attempt:   1,
	}
}

func TestDeliverPublishesTheEventWithItsIDAsNatsMsgID(t *testing.T) {
	t.Parallel()
	f := newNATS(t)
	sink, err := jetstream.NewSink(f.js, jetstream.WithStream("ORDERS"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	require.NoError(t, sink.Deliver(ctx, event(42, "order.placed", "customer-7")))

	msgs := f.messages(t)
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, "order.placed", m.Subject)
	require.JSONEq(t, `{"order_id":42}`, string(m.Data))
	require.Equal(t, "42", m.Header.Get(natsjs.MsgIDHeader))
	require.Equal(t, "order.placed", m.Header.Get(jetstream.HeaderTopic))
	require.Equal(t, "customer-7", m.Header.Get(jetstream.HeaderKey))
	require.Equal(t, "2026-12-01T21:00:00.000000123Z", m.Header.Get(jetstream.HeaderCreatedAt))
	require.Equal(t, "00-abc-01", m.Header.Get("Trace-Parent"), "the event's own headers travel")
	require.Equal(t, int64(1), sink.Published())
	require.Zero(t, sink.Duplicates())
}

func TestARedeliveryWithinTheDuplicateWindowIsStoredOnce(t *testing.T) {
	t.Parallel()
	f := newNATS(t)
	sink, err := jetstream.NewSink(f.js)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	for attempt := 1; attempt <= 3; attempt++ {
		e := event(7, "order.paid", "")
		e.Attempt = attempt
		require.NoError(t, sink.Deliver(ctx, e), "a duplicate is a success")
	}
	require.NoError(t, sink.Deliver(ctx, event(8, "order.paid", "")))

	msgs := f.messages(t)
	require.Len(t, msgs, 2)
	require.Equal(t, "7", msgs[0].Header.Get(natsjs.MsgIDHeader))
	require.Empty(t, msgs[0].Header.Get(jetstream.HeaderKey), "no key, no header")
	require.Equal(t, "8", msgs[1].Header.Get(natsjs.MsgIDHeader))
	require.Equal(t, int64(2), sink.Published())
	require.Equal(t, int64(2), sink.Duplicates())

	info, err := f.stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.DefaultDuplicates, info.Config.Duplicates)
}

func TestSubjectMappingAndMsgIDPrefix(t *testing.T) {
	t.Parallel()
	f := newNATS(t, "erp.>")
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	prefixed, err := jetstream.NewSink(f.js, jetstream.WithSubjectPrefix("erp."), jetstream.WithMsgIDPrefix("db1-"))
	require.NoError(t, err)
	require.NoError(t, prefixed.Deliver(ctx, event(1, "order.placed", "")))
	mapped, err := jetstream.NewSink(f.js, jetstream.WithMsgIDPrefix("db2-"), jetstream.WithSubjects(func(topic string) (string, error) {
		return "erp.mapped." + topic, nil
	}))
	require.NoError(t, err)
	require.NoError(t, mapped.Deliver(ctx, event(1, "order.placed", "")), "another outbox's event 1 is not a duplicate")

	msgs := f.messages(t)
	require.Len(t, msgs, 2)
	require.Equal(t, "erp.order.placed", msgs[0].Subject)
	require.Equal(t, "db1-1", msgs[0].Header.Get(natsjs.MsgIDHeader))
	require.Equal(t, "erp.mapped.order.placed", msgs[1].Subject)
	require.Equal(t, "db2-1", msgs[1].Header.Get(natsjs.MsgIDHeader))
	require.Equal(t, "order.placed", msgs[1].Header.Get(jetstream.HeaderTopic))
}

func TestDeliverFailsNamingTheEventAndSubject(t *testing.T) {
	t.Parallel()
	f := newNATS(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	plain, err := jetstream.NewSink(f.js)
	require.NoError(t, err)
	expecting, err := jetstream.NewSink(f.js, jetstream.WithStream("INVOICES"))
	require.NoError(t, err)
	mapped, err := jetstream.NewSink(f.js, jetstream.WithSubjects(func(topic string) (string, error) {
		return "", fmt.Errorf("no subject for %s", topic)
	}))
	require.NoError(t, err)

	tests := []struct {
		name string
		sink *jetstream.Sink
		e    outbox.Event
		want string
	}{
		{"a subject no stream captures", plain, event(3, "invoice.sent", ""),
			"jetstream: publish event 3 to invoice.sent: nats: no response from stream"},
		{"a stream other than the expected one", expecting, event(4, "order.placed", ""),
			"jetstream: publish event 4 to order.placed: nats: nats: API error: code=400 err_code=10060 description=expected stream does not match"},
		{"a topic that is no literal subject", plain, event(5, "order.*", ""),
			`jetstream: event 5: subject of topic "order.*": subject "order.*" has a wildcard: publish needs a literal subject`},
		{"a topic with an empty token", plain, event(6, "order..placed", ""),
			`jetstream: event 6: subject of topic "order..placed": subject "order..placed" has an empty token`},
		{"a mapping that fails", mapped, event(7, "order.placed", ""),
			`jetstream: event 7: subject of topic "order.placed": no subject for order.placed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.sink.Deliver(ctx, tt.e)
			require.EqualError(t, err, tt.want)
		})
	}
	require.Empty(t, f.messages(t), "nothing was stored")
}

func TestDeliverEndsWithItsContext(t *testing.T) {
	t.Parallel()
	f := newNATS(t)
	sink, err := jetstream.NewSink(f.js)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = sink.Deliver(ctx, event(1, "order.placed", ""))
	require.ErrorIs(t, err, context.Canceled)
}

func TestNewSinkReportsEveryBadOption(t *testing.T) {
	t.Parallel()
	_, err := jetstream.NewSink(nil,
		jetstream.WithSubjectPrefix(""),
		jetstream.WithSubjectPrefix("a b."),
		jetstream.WithSubjectPrefix("erp."),
		jetstream.WithSubjects(func(string) (string, error) { return "", nil }),
		jetstream.WithSubjects(nil),
		jetstream.WithMsgIDPrefix(""),
		jetstream.WithStream(""),
		nil,
	)
	require.EqualError(t, err, "new jetstream sink: jetstream must not be nil\n"+
		"WithSubjectPrefix: prefix must not be empty\n"+
		`WithSubjectPrefix("a b."): subject "a b.x" contains white space`+"\n"+
		"WithSubjects: the subject mapping is already set\n"+
		"WithSubjects: the subject mapping is already set\n"+
		"WithMsgIDPrefix: prefix must not be empty\n"+
		"WithStream: name must not be empty\n"+
		"option 7 is nil")
}

func TestEnsureStreamChecksItsConfigAndUpdates(t *testing.T) {
	t.Parallel()
	_, err := jetstream.EnsureStream(t.Context(), nil, natsjs.StreamConfig{Duplicates: -time.Second})
	require.EqualError(t, err, `ensure stream "": jetstream must not be nil`+"\n"+
		"stream name must not be empty\n"+
		`stream needs at least one subject (such as "order.>")`+"\n"+
		"duplicate window -1s must not be negative")

	f := newNATS(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	st, err := jetstream.EnsureStream(ctx, f.js, natsjs.StreamConfig{Name: "ORDERS", Subjects: []string{"order.>"}, Duplicates: 5 * time.Minute})
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, st.CachedInfo().Config.Duplicates, "an existing stream is updated")
	st, err = jetstream.EnsureStream(ctx, f.js, natsjs.StreamConfig{Name: "SHORT", Subjects: []string{"short.>"}, MaxAge: 10 * time.Minute})
	require.NoError(t, err)
	require.Equal(t, 10*time.Minute, st.CachedInfo().Config.Duplicates, "the window fits in MaxAge")
}

func TestTheSinksHeadersReplaceAnEventsOfTheSameName(t *testing.T) {
	t.Parallel()
	f := newNATS(t)
	sink, err := jetstream.NewSink(f.js)
	require.NoError(t, err)
	e := event(9, "order.placed", "k")
	e.Headers = map[string]string{natsjs.MsgIDHeader: "forged", jetstream.HeaderTopic: "forged", jetstream.HeaderKey: "forged", "X-Own": "kept"}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	require.NoError(t, sink.Deliver(ctx, e))
	msgs := f.messages(t)
	require.Len(t, msgs, 1)
	require.Equal(t, "9", msgs[0].Header.Get(natsjs.MsgIDHeader))
	require.Equal(t, "order.placed", msgs[0].Header.Get(jetstream.HeaderTopic))
	require.Equal(t, "k", msgs[0].Header.Get(jetstream.HeaderKey))
	require.Equal(t, "kept", msgs[0].Header.Get("X-Own"))

	// Without a key, an event's Outbox-Key header does not pass for one.
	e = event(10, "order.placed", "")
	e.Headers = map[string]string{jetstream.HeaderKey: "forged"}
	require.NoError(t, sink.Deliver(ctx, e))
	msgs = f.messages(t)
	require.Len(t, msgs, 2)
	require.Empty(t, msgs[1].Header.Values(jetstream.HeaderKey))
}
