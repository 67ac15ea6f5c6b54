package demo

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/cortexerp/datalayer/internal/localnats"
	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/outbox/jetstream"
)

// natsRun is the demo's JetStream: a stream of the run's own on a server
// of NATS_URL or one started with localnats, and the sink publishing to it.
type natsRun struct {
	srv    *localnats.Server // nil: NATS_URL's server
	nc     *nats.Conn
	stream natsjs.Stream
	sink   *jetstream.Sink
	idPfx  string // before each event id in Nats-Msg-Id
}

// startJetStream connects to url, or starts a nats-server when url is "";
// it returns nil, nil when there is no nats-server to start (say tells why).
// The stream, ERP_DEMO_<TAG>, takes the run's subjects erp-demo.<tag>.>,
// and the sink prefixes every Nats-Msg-Id with the tag, so runs sharing a
// server (and databases whose event ids start again at 1) never meet.
func startJetStream(ctx context.Context, url, tag string, say func(string, ...any)) (_ *natsRun, err error) {
	start := time.Now()
	n := &natsRun{}
	defer func() {
		if err != nil {
			n.close(ctx)
		}
	}()
	if url == "" {
		n.srv, err = localnats.Start(ctx)
		if errors.Is(err, localnats.ErrNoBinary) {
			say("JetStream: skipped (%v)", err)
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("start nats-server: %w", err)
		}
		url = n.srv.URL()
		say("started nats-server (%s) in %s", url, seconds(time.Since(start)))
	} else {
		say("using the NATS server of NATS_URL")
	}
	if n.nc, err = nats.Connect(url, nats.Name("erp-demo")); err != nil {
		return nil, natsError(err, url)
	}
	js, err := natsjs.New(n.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	name := "ERP_DEMO_" + strings.ToUpper(tag)
	prefix := "erp-demo." + tag + "."
	if n.stream, err = jetstream.EnsureStream(ctx, js, natsjs.StreamConfig{Name: name, Subjects: []string{prefix + ">"}}); err != nil {
		return nil, err
	}
	n.idPfx = tag + "-"
	if n.sink, err = jetstream.NewSink(js, jetstream.WithStream(name), jetstream.WithSubjectPrefix(prefix), jetstream.WithMsgIDPrefix(n.idPfx)); err != nil {
		return nil, err
	}
	return n, nil
}

// natsError is a failure to connect to rawURL, without its password: the
// text masks the URL's password wherever it quotes the URL, and the chain
// is cut (a wrapped error may quote it too).
func natsError(err error, rawURL string) error {
	msg := err.Error()
	if u, perr := neturl.Parse(rawURL); perr == nil && u.User != nil {
		if p, has := u.User.Password(); has {
			msg = strings.ReplaceAll(msg, rawURL, u.Redacted())
			if p != "" {
				msg = strings.ReplaceAll(msg, p, secret.Mask)
			}
		}
	} else if perr != nil {
		msg = strings.ReplaceAll(msg, rawURL, "NATS_URL")
	}
	return fmt.Errorf("connect to NATS: %s", msg)
}

// jsCount is what a consumer of the stream found.
type jsCount struct {
	messages   int            // messages read
	perID      map[string]int // messages per Nats-Msg-Id
	outOfOrder int            // messages after a later one of their Outbox-Key
}

// consume reads the whole stream with an ordered consumer, as a subscriber
// would, and counts its messages per Nats-Msg-Id.
func (n *natsRun) consume(ctx context.Context) (jsCount, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c := jsCount{perID: map[string]int{}}
	last := map[string]int64{} // the last event id of each key
	info, err := n.stream.Info(ctx)
	if err != nil {
		return c, fmt.Errorf("stream info: %w", err)
	}
	cons, err := n.stream.OrderedConsumer(ctx, natsjs.OrderedConsumerConfig{})
	if err != nil {
		return c, fmt.Errorf("consumer: %w", err)
	}
	for uint64(c.messages) < info.State.Msgs {
		batch, err := cons.Fetch(int(info.State.Msgs)-c.messages, natsjs.FetchMaxWait(5*time.Second))
		if err != nil {
			return c, fmt.Errorf("fetch: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			c.messages++
			msgID := m.Headers().Get(natsjs.MsgIDHeader)
			c.perID[msgID]++
			id, err := strconv.ParseInt(strings.TrimPrefix(msgID, n.idPfx), 10, 64)
			if err != nil {
				return c, fmt.Errorf("message %d: Nats-Msg-Id %q is no event id of this run", c.messages, msgID)
			}
			key := m.Headers().Get(jetstream.HeaderKey)
			if id <= last[key] {
				c.outOfOrder++
			}
			last[key] = id
		}
		if err := batch.Error(); err != nil {
			return c, fmt.Errorf("fetch: %w", err)
		}
		if got == 0 {
			return c, fmt.Errorf("fetch: no message within 5s, %d of %d read", c.messages, info.State.Msgs)
		}
	}
	return c, nil
}

// close deletes the run's stream from a server of NATS_URL, closes the
// connection and stops a server it started.
func (n *natsRun) close(ctx context.Context) {
	if n == nil {
		return
	}
	if n.stream != nil && n.srv == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		js, err := natsjs.New(n.nc)
		if err == nil {
			_ = js.DeleteStream(ctx, n.stream.CachedInfo().Config.Name)
		}
	}
	if n.nc != nil {
		n.nc.Close()
	}
	if n.srv != nil {
		_ = n.srv.Stop()
	}
}
