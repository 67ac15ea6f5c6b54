// Package demo is the ERP example at work, behind cmd/demo: it gets a
// PostgreSQL server (DATABASE_URL, else one started by localpg), migrates it
// (the application's migrations and the outbox's), gets a NATS server with
// JetStream (NATS_URL, else one started by localnats, else none), seeds a
// catalog, runs a concurrent workload of orders while outbox relays deliver
// every event to JetStream and to an in-process subscriber, and prints a
// report whose invariants it checks.
//
// Simulate, the workload alone, is what the integration tests reuse.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/cortexerp/datalayer/db"
	"github.com/cortexerp/datalayer/erp"
	"github.com/cortexerp/datalayer/localpg"
	"github.com/cortexerp/datalayer/migrate"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/provider"
)

// Config is the demo's command line.
type Config struct {
	Options
	// DatabaseURL names the server to use (and migrate); "" starts one with
	// localpg (Docker, else local binaries) and stops it at the end.
	DatabaseURL string
	// NATSURL names the NATS server (JetStream enabled) to deliver to; ""
	// starts one with localnats and stops it at the end, or, without a
	// nats-server program, skips JetStream, saying so.
	NATSURL string
}

// Run runs the demo, writing its progress and report to out. It fails when
// a step fails or when the report finds a broken invariant.
func Run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	for _, f := range []struct {
		name  string
		value int
	}{{"orders", cfg.Orders}, {"workers", cfg.Workers}, {"relays", cfg.Relays}} {
		if f.value <= 0 {
			return fmt.Errorf("-%s %d must be positive", f.name, f.value)
		}
	}
	start := time.Now()
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(out, format+"\n", args...) }
	if cfg.Tag == "" {
		cfg.Tag = NewTag()
	}
	say("ERP demo: %d orders from %d workers, %d outbox relays, seed %d", cfg.Orders, cfg.Workers, cfg.Relays, cfg.Seed)

	url := cfg.DatabaseURL
	if url == "" {
		srv, err := localpg.Start(ctx, localpg.WithSources(localpg.SourceDocker, localpg.SourceBinaries), localpg.WithoutSignalHandler())
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer func() {
			err = errors.Join(err, srv.Stop(context.WithoutCancel(ctx)))
			say("stopped PostgreSQL")
		}()
		say("started PostgreSQL (%s) in %s", srv.Source(), seconds(time.Since(start)))
		url = srv.URL()
	} else {
		say("using the server of DATABASE_URL")
	}

	if err := migrateUp(ctx, url, say); err != nil {
		return err
	}
	nr, err := startJetStream(ctx, cfg.NATSURL, cfg.Tag, say)
	if err != nil {
		return err
	}
	defer func() {
		nr.close(ctx)
		if nr != nil && nr.srv != nil {
			say("stopped nats-server")
		}
	}()
	if nr != nil {
		cfg.JetStream = nr.sink
	}
	p, err := provider.New(ctx,
		provider.WithEnvironment(map[string]string{
			"DATABASE_URL":             url,
			"DB_MAIN_POOL_MAX_CONNS":   strconv.Itoa(cfg.Workers + RelayConns(cfg.Options) + 2),
			"DB_MAIN_APPLICATION_NAME": "erp-demo",
			"DB_LOG_LEVEL":             "none", // refused coupons fail statements on purpose
		}),
		provider.WithAfterConnect(erp.RegisterTypes),
	)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { err = errors.Join(err, p.Close(context.WithoutCancel(ctx))) }()
	svc, err := erp.New(p.Main().Pool())
	if err != nil {
		return err
	}

	cfg.Progress = out
	res, err := Simulate(ctx, svc, cfg.Options)
	if err != nil {
		return fmt.Errorf("workload: %w", err)
	}
	return writeReport(ctx, out, svc, p.Main().Pool(), res, nr, start)
}

func migrateUp(ctx context.Context, url string, say func(string, ...any)) error {
	start := time.Now()
	m, err := migrate.Open(ctx, url, db.Migrations)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = m.Close() }()
	applied, err := m.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	version, err := m.Version(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := outbox.Migrate(ctx, url); err != nil {
		return err
	}
	say("migrated to version %d (%d applied), and the outbox's tables, in %s", version, len(applied), seconds(time.Since(start)))
	return nil
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s" }
