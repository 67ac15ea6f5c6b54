// Package demo is the ERP example at work, behind cmd/demo: it gets a
// PostgreSQL server (DATABASE_URL, else one started by localpg), migrates it,
// seeds a catalog, runs a concurrent workload of orders with outbox
// publishers, and prints a report whose invariants it checks.
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
	"github.com/cortexerp/datalayer/provider"
)

// Config is the demo's command line.
type Config struct {
	Options
	// DatabaseURL names the server to use (and migrate); "" starts one with
	// localpg (Docker, else local binaries) and stops it at the end.
	DatabaseURL string
}

// Run runs the demo, writing its progress and report to out. It fails when
// a step fails or when the report finds a broken invariant.
func Run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	for _, f := range []struct {
		name  string
		value int
	}{{"orders", cfg.Orders}, {"workers", cfg.Workers}, {"publishers", cfg.Publishers}} {
		if f.value <= 0 {
			return fmt.Errorf("-%s %d must be positive", f.name, f.value)
		}
	}
	start := time.Now()
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(out, format+"\n", args...) }
	say("ERP demo: %d orders from %d workers, %d outbox publishers, seed %d", cfg.Orders, cfg.Workers, cfg.Publishers, cfg.Seed)

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
	p, err := provider.New(ctx,
		provider.WithEnvironment(map[string]string{
			"DATABASE_URL":             url,
			"DB_MAIN_POOL_MAX_CONNS":   strconv.Itoa(cfg.Workers + cfg.Publishers + 2),
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
	return writeReport(ctx, out, svc, p.Main().Pool(), res, start)
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
	say("migrated to version %d (%d applied) in %s", version, len(applied), seconds(time.Since(start)))
	return nil
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s" }
