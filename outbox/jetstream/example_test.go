package jetstream_test

import (
	"context"
	"log"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/outbox/jetstream"
)

// A relay delivering the outbox to JetStream: the stream's duplicate window
// drops the redeliveries of events whose mark was lost.
func ExampleNewSink() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@127.0.0.1:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	// Every subject the sink publishes on, and a window that covers a relay
	// down for an hour.
	_, err = jetstream.EnsureStream(ctx, js, natsjs.StreamConfig{
		Name: "ERP", Subjects: []string{"erp.>"}, Duplicates: time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	sink, err := jetstream.NewSink(js, jetstream.WithSubjectPrefix("erp."), jetstream.WithStream("ERP"))
	if err != nil {
		log.Fatal(err)
	}
	relay, err := outbox.NewRelay(pool, sink)
	if err != nil {
		log.Fatal(err)
	}
	if err := relay.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
