// Command outbox looks after the outbox package's tables: it applies their
// migrations, counts events, lists and replays dead letters, and deletes old
// delivered events and old inbox records.
//
//	go run ./cmd/outbox [flags] COMMAND [ARGS] [flags]
//
// It connects as cmd/migrate does, with the provider's configuration of the
// database -db names (default main): migrate uses DB_<NAME>_MIGRATE_URL when
// set, the other commands the application's connection (DB_<NAME>_URL,
// DATABASE_URL for main, or DB_<NAME>_HOST…). Run it with -h for every
// command and flag. Exit status: 0 success, 1 failure, 2 usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
