package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/migrate"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/provider"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `usage: outbox [flags] COMMAND [ARGS] [flags]

commands:
  migrate            apply the outbox's migrations (version table ` + outbox.VersionTable + `)
  status             count pending, ready and dead events; the oldest pending
  dead               list dead-lettered events (-topic, -after, -limit)
  replay ID...       make dead-lettered events pending again (or -all, with -topic)
  purge              delete events delivered more than -older-than ago
  purge-inbox        delete consumers' inbox records older than -older-than
                     (keep them longer than an event can be redelivered)

The connection is the provider's for the database -db names (see cmd/migrate):
migrate uses DB_<NAME>_MIGRATE_URL when set; the others DB_<NAME>_URL, DATABASE_URL
for main, or DB_<NAME>_HOST, PORT, USER, PASSWORD… Flags may come before or after
the command.

flags:
`

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

type command struct {
	name      string
	ids       []int64
	dbName    string
	topic     string
	after     int64
	limit     int
	all       bool
	olderThan time.Duration
	batch     int
	pgbouncer bool
}

// run is the whole program: it parses args, reads the environment through
// env, writes results to stdout and errors to stderr, and returns the exit
// status.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	c, err := parse(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "outbox: %v\nRun 'outbox -h' for usage.\n", err)
		return exitUsage
	}
	if err := c.run(ctx, env, stdout); err != nil {
		_, _ = fmt.Fprintf(stderr, "outbox: %v\n", err)
		return exitFail
	}
	return exitOK
}

func parse(args []string, stdout io.Writer) (command, error) {
	var c command
	fset := flag.NewFlagSet("outbox", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	fset.StringVar(&c.dbName, "db", "main", "the database of this name: its DB_<NAME>_* variables")
	fset.StringVar(&c.topic, "topic", "", "dead, replay -all: only events of this topic")
	fset.Int64Var(&c.after, "after", 0, "dead: list events with ids above this one (paging)")
	fset.IntVar(&c.limit, "limit", 50, "dead: list at most this many events")
	fset.BoolVar(&c.all, "all", false, "replay: every dead-lettered event (of -topic)")
	fset.DurationVar(&c.olderThan, "older-than", 7*24*time.Hour,
		"purge: delete events delivered longer ago than this; purge-inbox: inbox records processed longer ago than this")
	fset.IntVar(&c.batch, "batch", outbox.DefaultRetentionBatch, "purge, purge-inbox: rows deleted per statement")
	fset.BoolVar(&c.pgbouncer, "pgbouncer", false, "migrate: a table lock instead of an advisory session lock (PgBouncer transaction mode)")
	var positional []string
	rest := args
	for {
		if err := fset.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				_, _ = fmt.Fprint(stdout, usage)
				fset.SetOutput(stdout)
				fset.PrintDefaults()
				return c, err
			}
			return c, usageError{err.Error()}
		}
		if fset.NArg() == 0 {
			break
		}
		positional = append(positional, fset.Arg(0))
		rest = fset.Args()[1:]
	}
	if len(positional) == 0 {
		return c, usagef("missing command")
	}
	c.name = positional[0]
	argv := positional[1:]
	switch c.name {
	case "migrate", "status", "dead", "purge", "purge-inbox":
		if len(argv) > 0 {
			return c, usagef("%s: unexpected argument %q", c.name, argv[0])
		}
	case "replay":
		for _, a := range argv {
			id, err := strconv.ParseInt(a, 10, 64)
			if err != nil || id < 1 {
				return c, usagef("replay: event id %q must be a whole number ≥ 1", a)
			}
			c.ids = append(c.ids, id)
		}
		switch {
		case c.all && len(c.ids) > 0:
			return c, usagef("replay: give event ids or -all, not both")
		case !c.all && len(c.ids) == 0:
			return c, usagef("replay: missing event ids (or -all)")
		}
	default:
		return c, usagef("unknown command %q", c.name)
	}
	switch {
	case c.limit < 1:
		return c, usagef("-limit %d must be at least 1", c.limit)
	case c.olderThan < 0:
		return c, usagef("-older-than %v must not be negative", c.olderThan)
	case c.batch < 1:
		return c, usagef("-batch %d must be at least 1", c.batch)
	}
	return c, nil
}

// environ is the provider's variables of database name, read through env.
func environ(env func(string) string, name string, migrating bool) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range provider.EnvVars() {
		key := strings.Replace(v, "<NAME>", strings.ToUpper(name), 1)
		if val := env(key); val != "" {
			out[key] = val
		}
	}
	prefix := "DB_" + strings.ToUpper(name) + "_"
	set := name == "main" && out["DATABASE_URL"] != ""
	for _, v := range []string{"URL", "HOST"} {
		set = set || out[prefix+v] != ""
	}
	// The schema owner's URL serves migrate only: the other commands connect
	// as the application does.
	set = set || migrating && out[prefix+"MIGRATE_URL"] != ""
	if !set {
		also := ""
		if name == "main" {
			also = ", DATABASE_URL"
		}
		return nil, fmt.Errorf("no database for -db %s: set %sURL%s or %sHOST (with PORT, USER, PASSWORD…)", name, prefix, also, prefix)
	}
	out["DB_NAMES"] = name
	return out, nil
}

func (c command) run(ctx context.Context, env func(string) string, out io.Writer) error {
	vars, err := environ(env, c.dbName, c.name == "migrate")
	if err != nil {
		return err
	}
	if c.name == "migrate" {
		return c.migrate(ctx, vars, out)
	}
	// The provider logs nothing: the command prints its own results.
	p, err := provider.New(ctx, provider.WithEnvironment(vars), provider.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer func() { _ = p.Close(context.WithoutCancel(ctx)) }()
	db, err := p.DB(c.dbName)
	if err != nil {
		return err
	}
	pool := db.Pool()
	switch c.name {
	case "status":
		return status(ctx, pool, out)
	case "dead":
		return c.dead(ctx, pool, out)
	case "replay":
		n, err := c.replay(ctx, pool)
		_, _ = fmt.Fprintf(out, "replayed %d events\n", n)
		return err
	case "purge-inbox":
		n, err := outbox.DeleteInbox(ctx, pool, c.olderThan, c.batch)
		_, _ = fmt.Fprintf(out, "deleted %d inbox records processed more than %v ago\n", n, c.olderThan)
		return err
	default: // purge
		n, err := outbox.DeleteDelivered(ctx, pool, c.olderThan, c.batch)
		_, _ = fmt.Fprintf(out, "deleted %d events delivered more than %v ago\n", n, c.olderThan)
		return err
	}
}

func (c command) migrate(ctx context.Context, vars map[string]string, out io.Writer) error {
	dc, err := provider.LoadDatabase(vars, c.dbName)
	if err != nil {
		return fmt.Errorf("-db %s: %w", c.dbName, err)
	}
	cc, err := dc.MigrationConnConfig()
	if err != nil {
		return err
	}
	opts := []migrate.Option{migrate.WithVersionTable(outbox.VersionTable)}
	if c.pgbouncer {
		opts = append(opts, migrate.WithTableLock())
	}
	m, err := migrate.OpenConfig(ctx, cc, outbox.Migrations(), opts...)
	if err != nil {
		return err
	}
	defer func() { _ = m.Close() }()
	rs, err := m.Up(ctx)
	for _, r := range rs {
		_, _ = fmt.Fprintf(out, "%s\n", r)
	}
	if err != nil {
		return err
	}
	v, err := m.Version(ctx)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "outbox tables at version %d\n", v)
	return nil
}

func status(ctx context.Context, pool *pgxpool.Pool, out io.Writer) error {
	st, err := outbox.ReadStats(ctx, pool)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "pending %d (ready %d), dead %d, oldest pending %v, oldest ready %v\n",
		st.Pending, st.Ready, st.Dead, st.OldestPendingAge.Round(time.Millisecond), st.OldestReadyAge.Round(time.Millisecond))
	return err
}

func (c command) dead(ctx context.Context, pool *pgxpool.Pool, out io.Writer) error {
	ds, err := outbox.ListDead(ctx, pool, c.topic, c.after, c.limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "ID\tTOPIC\tKEY\tATTEMPTS\tDEAD AT\tLAST ERROR") // errors surface at Flush
	for _, d := range ds {
		_, _ = fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Topic, d.Key, d.Attempt,
			d.DeadAt.UTC().Format("2006-01-02 15:04:05 MST"), oneLine(d.LastError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(ds) == c.limit {
		_, err = fmt.Fprintf(out, "more may follow: -after %d\n", ds[len(ds)-1].ID)
	}
	return err
}

func (c command) replay(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	if c.all {
		return outbox.ReplayAll(ctx, pool, c.topic)
	}
	return outbox.Replay(ctx, pool, slices.Compact(slices.Sorted(slices.Values(c.ids)))...)
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
