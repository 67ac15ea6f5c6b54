package localpg_test

import (
	"context"
	"fmt"
	"log"

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
