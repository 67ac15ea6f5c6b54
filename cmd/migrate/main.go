// Command migrate applies the schema migrations: the ones embedded in the
// binary (package db) or those in -dir.
//
//	go run ./cmd/migrate [flags] up|up-by-one|up-to V|down|down-to V|redo|reset|status|version|create NAME [sql|go]|validate
//
// The database comes from DB_MAIN_MIGRATE_URL (a schema-owner role), else
// DATABASE_URL, else DB_MAIN_URL. Exit status: 0 success, 1 failure, 2 usage.
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
