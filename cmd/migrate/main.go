// Command migrate applies the schema migrations: the ones embedded in the
// binary (package db, and the Go migrations of db/migrations) or those in
// -dir.
//
//	go run ./cmd/migrate [flags] COMMAND [ARGS] [flags]
//
// It connects with the provider's configuration of the database -db names
// (default main): DB_<NAME>_MIGRATE_URL, a schema-owner role, when set, else
// the application's own connection (DB_<NAME>_URL, DATABASE_URL for main,
// or DB_<NAME>_HOST…). Run it with -h for every command and flag. Exit
// status: 0 success, 1 failure, 2 usage.
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
