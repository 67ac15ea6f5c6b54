package outbox_test

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/localpg"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

// exampleDB returns the URL of a fresh, empty database for the example,
// which has no *testing.T to ask dbtest for one, and a function that drops
// it and stops the server.
func exampleDB(ctx context.Context) (string, func()) {
	// Like dbtest: a server of the environment only when opted in.
	srv, err := localpg.Start(ctx, localpg.WithEnvVars(dbtest.DatabaseURLEnv))
	if err != nil {
		panic(err)
	}
	admin, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		panic(err)
	}
	name := fmt.Sprintf("outbox_example_%d", os.Getpid())
	_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		panic(err)
	}
	return srv.URLFor(name), func() {
		_, _ = admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
		_ = admin.Close(ctx)
		_ = srv.Stop(ctx)
	}
}

func Example() {
	ctx := context.Background()
	url, done := exampleDB(ctx)
	defer done()

	// The outbox's tables, beside any application schema.
	if err := outbox.Migrate(ctx, url); err != nil {
		panic(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	u := uow.New(pool, func(d uow.DBTX) uow.DBTX { return d }) // with sqlc: uow.New(pool, dbgen.New)

	// Writing: the event commits with the unit of work, or not at all.
	err = u.Do(ctx, func(ctx context.Context, q uow.DBTX) error {
		// … the order's own writes through q …
		return outbox.Publish(ctx, "order.placed", "order-1", []byte(`{"id":1}`))
	})
	if err != nil {
		panic(err)
	}

	// Relaying: to an in-process bus; Run(ctx) in a service, Drain here.
	bus := outbox.NewBus()
	if _, err := bus.Subscribe("order.placed", func(_ context.Context, e outbox.Event) error {
		fmt.Printf("%s %s %s (attempt %d)\n", e.Topic, e.Key, e.Payload, e.Attempt)
		return nil
	}); err != nil {
		panic(err)
	}
	relay, err := outbox.NewRelay(pool, bus, outbox.WithWorkers(2), outbox.WithMaxAttempts(5))
	if err != nil {
		panic(err)
	}
	n, err := relay.Drain(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("delivered", n)
	// Output:
	// order.placed order-1 {"id":1} (attempt 1)
	// delivered 1
}
