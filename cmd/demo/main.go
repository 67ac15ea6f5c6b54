// Command demo runs the ERP example application: without DATABASE_URL it
// starts a PostgreSQL server of its own (Docker, else local binaries), then
// migrates, seeds, runs a concurrent order workload with outbox publishers,
// prints a report and stops the server. With DATABASE_URL it uses (and
// migrates) that server.
//
//	go run ./cmd/demo [-orders 300] [-workers 8] [-publishers 2] [-seed 1]
//
// Exit status: 0 success, 1 failure (an invariant broken included), 2 usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cortexerp/datalayer/erp/demo"
)

func main() {
	cfg := demo.Config{DatabaseURL: os.Getenv("DATABASE_URL")}
	flag.IntVar(&cfg.Orders, "orders", 300, "order requests to send, replays included")
	flag.IntVar(&cfg.Workers, "workers", 8, "concurrent clients")
	flag.IntVar(&cfg.Publishers, "publishers", 2, "outbox publishers running during the workload")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the random requests (same seed, same requests)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected argument %q\n", flag.Arg(0))
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := demo.Run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}
