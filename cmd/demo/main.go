// Command demo runs the ERP example application: without DATABASE_URL it
// starts a PostgreSQL server of its own (Docker, else local binaries), then
// migrates, seeds, runs a concurrent order workload while outbox relays
// deliver every event to NATS JetStream and to an in-process subscriber,
// prints a report and stops the servers. With DATABASE_URL it uses (and
// migrates) that server; with NATS_URL that NATS server, else it starts a
// nats-server of its own, else it skips JetStream, saying so.
//
//	go run ./cmd/demo [-orders 300] [-workers 8] [-relays 2] [-lose-marks 10] [-seed 1]
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
	cfg := demo.Config{DatabaseURL: os.Getenv("DATABASE_URL"), NATSURL: os.Getenv("NATS_URL")}
	flag.IntVar(&cfg.Orders, "orders", 300, "order requests to send, replays included")
	flag.IntVar(&cfg.Workers, "workers", 8, "concurrent clients")
	flag.IntVar(&cfg.Relays, "relays", 2, "outbox relays running during the workload")
	flag.IntVar(&cfg.LoseMarks, "lose-marks", 10, "lose the mark of every n-th event's first delivery, so it is delivered again (-1: none)")
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
