package localpg_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cortexerp/datalayer/localpg"
)

// A test or a program that needs a given PostgreSQL version starts it from
// that version's binaries: here PostgreSQL 17, fetched with make pg MAJOR=17
// (tools/pgfetch.sh --dir 17 prints the directory). LOCALPG_BIN_DIR does the
// same for every Start, without changing the code.
func ExampleWithBinDir() {
	ctx := context.Background()
	srv, err := localpg.Start(ctx,
		localpg.WithSources(localpg.SourceBinaries), // never DATABASE_URL's server
		localpg.WithBinDir("/var/cache/datalayer/pg/17/bin"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = srv.Stop(context.WithoutCancel(ctx)) }()

	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		log.Fatal(err)
	}
	fmt.Println("PostgreSQL", num/10000)
}

// A test of read replicas starts a primary from binaries and streaming
// standbys of it; one applies commits two seconds late, to see lag.
func ExampleServer_StartStandby() {
	ctx := context.Background()
	primary, err := localpg.Start(ctx, localpg.WithSources(localpg.SourceBinaries))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = primary.Stop(context.WithoutCancel(ctx)) }() // stops the standbys too
	replica, err := primary.StartStandby(ctx)
	if err != nil {
		log.Fatal(err)
	}
	lagging, err := primary.StartStandby(ctx, localpg.ApplyDelay(2*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	// ... write on primary.URL(), read on replica.URL() after replica.CatchUp(ctx) ...
	fmt.Println(replica.Slot(), lagging.Slot())
}
