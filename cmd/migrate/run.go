package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/cortexerp/datalayer/db"
	"github.com/cortexerp/datalayer/migrate"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// urlVars are the environment variables naming the database, first set wins.
var urlVars = []string{"DB_MAIN_MIGRATE_URL", "DATABASE_URL", "DB_MAIN_URL"}

// defaultCreateDir is where create writes without -dir.
const defaultCreateDir = "db/migrations"

const usageText = `usage: migrate [flags] COMMAND

commands:
  up                    apply all pending migrations
  up-by-one             apply the next pending migration
  up-to V               apply pending migrations up to and including version V
  down                  roll back the latest migration
  down-to V             roll back migrations newer than version V (0: all)
  redo                  roll back the latest migration and apply it again
  reset                 roll back all migrations
  status                list migrations with their state
  version               print the current version
  create NAME [sql|go]  write the next numbered migration file (into -dir, default db/migrations)
  validate              check migration file names, numbering and annotations

The database URL comes from DB_MAIN_MIGRATE_URL, else DATABASE_URL, else DB_MAIN_URL.

flags:
`

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// command is a parsed command line.
type command struct {
	name    string
	version int64  // up-to, down-to
	newName string // create
	kind    string // create
	dir     string
	opts    []migrate.Option
}

// run is the whole program: it parses args, reads the environment through
// env, writes results to stdout and errors to stderr, and returns the exit
// status.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	cmd, err := parse(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "migrate: %v\nRun 'migrate -h' for usage.\n", err)
		return exitUsage
	}
	out := &printer{w: stdout}
	err = execute(ctx, cmd, env, out)
	if err == nil && out.err != nil {
		err = fmt.Errorf("write output: %w", out.err)
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "migrate: %v\n", err)
		return exitFail
	}
	return exitOK
}

func parse(args []string, stdout io.Writer) (command, error) {
	fset := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	dir := fset.String("dir", "", "read migrations from this directory instead of the embedded ones (create: write there; default db/migrations)")
	lockTimeout := fset.Duration("lock-timeout", migrate.DefaultLockTimeout, "lock_timeout for migration statements; 0 keeps the server's setting")
	lockWait := fset.Duration("lock-wait", migrate.DefaultLockWait, "how long to wait for another migration to finish")
	pgbouncer := fset.Bool("pgbouncer", false, "use a table lock instead of an advisory session lock (PgBouncer transaction mode)")
	acceptDrift := fset.Bool("accept-drift", false, "run even though an applied migration file changed, recording its new checksum (the new text is not run)")
	allowMissing := fset.Bool("allow-missing", false, "apply migrations older than the current version that were never applied (a branch merged late)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fset.SetOutput(stdout)
			_, _ = fmt.Fprint(stdout, usageText)
			fset.PrintDefaults()
			return command{}, err
		}
		return command{}, usageError{err.Error()}
	}
	if *lockTimeout < 0 {
		return command{}, usagef("-lock-timeout %v must not be negative", *lockTimeout)
	}
	if *lockWait <= 0 {
		return command{}, usagef("-lock-wait %v must be positive", *lockWait)
	}
	c := command{dir: *dir}
	c.opts = append(c.opts, migrate.WithLockTimeout(lockTimeout.Round(time.Millisecond)), migrate.WithLockWait(*lockWait))
	if *pgbouncer {
		c.opts = append(c.opts, migrate.WithTableLock())
	}
	if *acceptDrift {
		c.opts = append(c.opts, migrate.WithAcceptDrift())
	}
	if *allowMissing {
		c.opts = append(c.opts, migrate.WithAllowMissing())
	}
	rest := fset.Args()
	if len(rest) == 0 {
		return c, usagef("missing command")
	}
	c.name, rest = rest[0], rest[1:]
	nargs := func(min, max int, what string) error {
		if len(rest) < min {
			return usagef("%s: missing %s", c.name, what)
		}
		if len(rest) > max {
			return usagef("%s: unexpected argument %q", c.name, rest[max])
		}
		return nil
	}
	switch c.name {
	case "up", "up-by-one", "down", "redo", "reset", "status", "version", "validate":
		return c, nargs(0, 0, "")
	case "up-to", "down-to":
		if err := nargs(1, 1, "version V"); err != nil {
			return c, err
		}
		v, err := strconv.ParseInt(rest[0], 10, 64)
		least := int64(0)
		if c.name == "up-to" {
			least = 1
		}
		if err != nil || v < least {
			return c, usagef("%s: version %q must be a whole number ≥ %d", c.name, rest[0], least)
		}
		c.version = v
		return c, nil
	case "create":
		if err := nargs(1, 2, "migration NAME"); err != nil {
			return c, err
		}
		c.newName, c.kind = rest[0], "sql"
		if len(rest) == 2 {
			c.kind = rest[1]
		}
		if c.kind != "sql" && c.kind != "go" {
			return c, usagef("create: kind %q must be sql or go", c.kind)
		}
		return c, nil
	default:
		return c, usagef("unknown command %q", c.name)
	}
}

func execute(ctx context.Context, c command, env func(string) string, out *printer) error {
	switch c.name {
	case "create":
		dir := c.dir
		if dir == "" {
			dir = defaultCreateDir
		}
		file, err := migrate.Create(dir, c.newName, c.kind)
		if err != nil {
			return err
		}
		out.printf("created %s\n", file)
		return nil
	case "validate":
		fsys, err := migrations(c.dir)
		if err != nil {
			return err
		}
		if err := migrate.Validate(fsys); err != nil {
			return err
		}
		out.printf("migrations are valid\n")
		return nil
	}

	url, err := databaseURL(env)
	if err != nil {
		return err
	}
	fsys, err := migrations(c.dir)
	if err != nil {
		return err
	}
	m, err := migrate.Open(ctx, url, fsys, c.opts...)
	if err != nil {
		return err
	}
	defer func() { _ = m.Close() }() // nothing left to flush: the work is done or failed

	var rs []migrate.Result
	switch c.name {
	case "status":
		return printStatus(ctx, m, out)
	case "version":
		v, err := m.Version(ctx)
		if err != nil {
			return err
		}
		out.printf("%d\n", v)
		return nil
	case "up":
		rs, err = m.Up(ctx)
	case "up-by-one":
		rs, err = m.UpByOne(ctx)
	case "up-to":
		rs, err = m.UpTo(ctx, c.version)
	case "down":
		rs, err = m.Down(ctx)
	case "down-to":
		rs, err = m.DownTo(ctx, c.version)
	case "redo":
		rs, err = m.Redo(ctx)
	case "reset":
		rs, err = m.Reset(ctx)
	}
	for _, f := range m.Baselined() {
		out.printf("recorded checksum of %s (applied before checksums were kept)\n", f)
	}
	for _, r := range rs {
		out.printf("%s\n", r)
	}
	if err != nil {
		return err
	}
	v, err := m.Version(ctx)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		out.printf("nothing to do; database at version %d\n", v)
	} else {
		out.printf("database at version %d\n", v)
	}
	return nil
}

func databaseURL(env func(string) string) (string, error) {
	for _, k := range urlVars {
		if v := env(k); v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("no database URL: set %s (the schema owner role), %s or %s", urlVars[0], urlVars[1], urlVars[2])
}

func migrations(dir string) (fs.FS, error) {
	if dir == "" {
		return db.Migrations, nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("-dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("-dir %s: not a directory", dir)
	}
	return os.DirFS(dir), nil
}

func printStatus(ctx context.Context, m *migrate.Migrator, out *printer) error {
	ss, err := m.Status(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	// The CHECKSUM column shows only when some applied file changed or has
	// no recorded checksum yet.
	showSums := false
	for _, s := range ss {
		showSums = showSums || checksumState(s) != "" && checksumState(s) != "ok"
	}
	if showSums {
		_, _ = fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED AT\tCHECKSUM") // errors surface at Flush
	} else {
		_, _ = fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED AT")
	}
	for _, s := range ss {
		at := "pending"
		if s.State == migrate.StateApplied {
			at = s.AppliedAt.UTC().Format("2006-01-02 15:04:05 MST")
		}
		name := s.File
		if name == "" {
			name = "(go)"
		}
		if showSums {
			_, _ = fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", s.Version, name, at, checksumState(s))
		} else {
			_, _ = fmt.Fprintf(tw, "%05d\t%s\t%s\n", s.Version, name, at)
		}
	}
	return tw.Flush()
}

// checksumState says whether an applied file still matches its recorded checksum.
func checksumState(s migrate.MigrationStatus) string {
	switch {
	case s.State != migrate.StateApplied || s.Checksum == "":
		return ""
	case s.RecordedChecksum == "":
		return "not recorded (the next up records it)"
	case s.Drift:
		return fmt.Sprintf("CHANGED (recorded %.12s…, file %.12s…)", s.RecordedChecksum, s.Checksum)
	default:
		return "ok"
	}
}

// printer writes to stdout and keeps the first write error for the exit status.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.w.Write(b)
	p.err = err
	return n, err
}
