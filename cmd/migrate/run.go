package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cortexerp/datalayer/db"
	"github.com/cortexerp/datalayer/db/migrations/gomigrations"
	"github.com/cortexerp/datalayer/migrate"
	"github.com/cortexerp/datalayer/provider"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// defaultCreateDir is where create writes without -dir.
const defaultCreateDir = "db/migrations"

const usageHead = `usage: migrate [flags] COMMAND [ARGS] [flags]

commands:
`

const usageTail = `
The connection is the provider's (the README's variable table) for the
database -db names: DB_<NAME>_MIGRATE_URL (the schema owner role, with
DB_<NAME>_MIGRATE_PASSWORD_FILE) when set, else DB_<NAME>_URL, else for main
DATABASE_URL, else DB_<NAME>_HOST, PORT, USER, PASSWORD or PASSWORD_FILE,
DBNAME and SSLMODE. Flags may come before or after the command.

flags:
`

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// command is a parsed command line.
type command struct {
	spec    spec
	version int64  // up-to, down-to
	newName string // create
	kind    string // create
	dir     string
	dbName  string
	dryRun  bool // up
	opts    []migrate.Option
}

// A spec is one command: its usage, how its arguments are read and what it
// does. Adding a command is adding an entry to commands.
type spec struct {
	name  string
	args  string // the arguments in the usage line: "V", "NAME [sql|go]"
	help  string
	parse func(c *command, args []string) error // nil: the command takes no arguments
	run   func(ctx context.Context, s *session) error
}

// commands, in the order the usage lists them.
var commands = []spec{
	{name: "up", help: "apply all pending migrations (-dry-run: print their SQL instead)", run: runUp},
	{name: "up-by-one", help: "apply the next pending migration", run: migrating((*migrate.Migrator).UpByOne)},
	{name: "up-to", args: "V", help: "apply pending migrations up to and including version V", parse: versionArg(1),
		run: migratingTo((*migrate.Migrator).UpTo)},
	{name: "down", help: "roll back the latest migration", run: migrating((*migrate.Migrator).Down)},
	{name: "down-to", args: "V", help: "roll back migrations newer than version V (0: all)", parse: versionArg(0),
		run: migratingTo((*migrate.Migrator).DownTo)},
	{name: "redo", help: "roll back the latest migration and apply it again", run: migrating((*migrate.Migrator).Redo)},
	{name: "reset", help: "roll back all migrations", run: migrating((*migrate.Migrator).Reset)},
	{name: "status", help: "list migrations with their state", run: runStatus},
	{name: "version", help: "print the current version", run: runVersion},
	{name: "create", args: "NAME [sql|go]", help: "write the next numbered migration file (into -dir, default db/migrations)",
		parse: createArgs, run: runCreate},
	{name: "validate", help: "check migration file names, numbering and annotations", run: runValidate},
	{name: "lint", help: "check every statement on PostgreSQL's parser: syntax, and what locks or rewrites a busy table", run: runLint},
	{name: "fix", help: "renumber timestamped migrations sequentially (into -dir, default db/migrations), as goose fix does", run: runFix},
}

func lookup(name string) (spec, bool) {
	i := slices.IndexFunc(commands, func(s spec) bool { return s.name == name })
	if i < 0 {
		return spec{}, false
	}
	return commands[i], true
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
		_, _ = fmt.Fprintf(stderr, "migrate: %v\nRun 'migrate -h' for usage.\n", err)
		return exitUsage
	}
	s := &session{c: c, env: env, out: &printer{w: stdout}}
	err = c.spec.run(ctx, s)
	if s.m != nil {
		_ = s.m.Close() // nothing left to flush: the work is done or failed
	}
	if err == nil && s.out.err != nil {
		err = fmt.Errorf("write output: %w", s.out.err)
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "migrate: %v\n", err)
		return exitFail
	}
	return exitOK
}

// parse reads the command line; flags may come before and after the
// command and its arguments ("migrate up -allow-missing"), and everything
// after "--" is an argument.
func parse(args []string, stdout io.Writer) (command, error) {
	fset := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	dir := fset.String("dir", "", "read migrations from this directory instead of the embedded ones (create: write there; default db/migrations)")
	dbName := fset.String("db", "main", "migrate the database of this name: its DB_<NAME>_* variables (use -dir for its migrations)")
	lockTimeout := fset.Duration("lock-timeout", migrate.DefaultLockTimeout, "lock_timeout for migration statements; 0 keeps the server's setting")
	lockWait := fset.Duration("lock-wait", migrate.DefaultLockWait, "how long to wait for another migration to finish")
	pgbouncer := fset.Bool("pgbouncer", false, "use a table lock instead of an advisory session lock (PgBouncer transaction mode)")
	acceptDrift := fset.Bool("accept-drift", false, "run even though an applied migration file changed, recording its new checksum (the new text is not run)")
	allowMissing := fset.Bool("allow-missing", false, "apply migrations older than the current version that were never applied (a branch merged late)")
	showVersion := fset.Bool("version", false, "print the version of migrate and of goose, and exit")
	numbering := fset.String("numbering", "auto", "the project's numbering, for validate and create: sequential, timestamp (goose's YYYYMMDDhhmmss), or auto (what most files use)")
	dryRun := fset.Bool("dry-run", false, "up: print the SQL that would run, in order, and change nothing (reads the version table, takes no lock)")
	table := fset.String("table", "", "goose's version table (default goose_db_version); checksums go to TABLE_checksums")

	flagArgs, tail, dashes := slices.Clone(args), []string(nil), false
	if i := slices.Index(args, "--"); i >= 0 {
		flagArgs, tail, dashes = args[:i], args[i+1:], true
	}
	var positional []string
	for len(flagArgs) > 0 {
		// A negative number is an argument (down-to -1 gets its own
		// error), not a flag.
		seg, next := flagArgs, []string(nil)
		if i := slices.IndexFunc(flagArgs, negativeNumber); i >= 0 {
			seg, next = flagArgs[:i], flagArgs[i:]
		}
		if err := fset.Parse(seg); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(fset, stdout)
				return command{}, err
			}
			return command{}, usageError{err.Error()}
		}
		rest := slices.Concat(fset.Args(), next)
		if len(rest) == 0 {
			break
		}
		positional, flagArgs = append(positional, rest[0]), rest[1:]
	}
	if dashes {
		positional = append(positional, tail...)
	}
	if *showVersion {
		_, _ = fmt.Fprintln(stdout, versionLine())
		return command{}, flag.ErrHelp
	}
	if *lockTimeout < 0 {
		return command{}, usagef("-lock-timeout %v must not be negative", *lockTimeout)
	}
	if *lockWait <= 0 {
		return command{}, usagef("-lock-wait %v must be positive", *lockWait)
	}
	scheme, err := migrate.ParseNumbering(*numbering)
	if err != nil {
		return command{}, usagef("-numbering: %v", err)
	}
	if !validDBName.MatchString(*dbName) {
		return command{}, usagef("-db %q: a database name is a letter followed by letters, digits or _ (as in DB_NAMES)", *dbName)
	}
	c := command{dir: *dir, dbName: strings.ToLower(*dbName)}
	c.opts = append(c.opts, migrate.WithLockTimeout(lockTimeout.Round(time.Millisecond)), migrate.WithLockWait(*lockWait),
		migrate.WithNumbering(scheme))
	if *table != "" {
		c.opts = append(c.opts, migrate.WithVersionTable(*table))
	}
	if *pgbouncer {
		c.opts = append(c.opts, migrate.WithTableLock())
	}
	if *acceptDrift {
		c.opts = append(c.opts, migrate.WithAcceptDrift())
	}
	if *allowMissing {
		c.opts = append(c.opts, migrate.WithAllowMissing())
	}
	if len(positional) == 0 {
		return c, usagef("missing command")
	}
	sp, ok := lookup(positional[0])
	if !ok {
		return c, usagef("unknown command %q", positional[0])
	}
	c.spec, c.dryRun = sp, *dryRun
	if c.dryRun && sp.name != "up" {
		return c, usagef("-dry-run works with up, not %s", sp.name)
	}
	if sp.parse == nil {
		return c, nargs(sp.name, positional[1:], 0, 0, "")
	}
	return c, sp.parse(&c, positional[1:])
}

// validDBName is a name DB_NAMES accepts, in either case.
var validDBName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// negativeNumber reports whether arg is "-" and digits.
func negativeNumber(arg string) bool {
	_, err := strconv.ParseInt(arg, 10, 64)
	return err == nil && strings.HasPrefix(arg, "-")
}

func printUsage(fset *flag.FlagSet, w io.Writer) {
	_, _ = fmt.Fprint(w, usageHead)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, sp := range commands {
		_, _ = fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(sp.name+" "+sp.args), sp.help)
	}
	_ = tw.Flush() // errors of w are the terminal's
	_, _ = fmt.Fprint(w, usageTail)
	fset.SetOutput(w)
	fset.PrintDefaults()
}

// versionLine names this build of migrate and the goose it runs.
func versionLine() string {
	version, goose := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/pressly/goose/v3" {
				goose = d.Version
			}
		}
	}
	return fmt.Sprintf("migrate %s (github.com/cortexerp/datalayer), goose %s", version, goose)
}

// nargs checks that a command got between min and max arguments.
func nargs(name string, args []string, min, max int, what string) error {
	if len(args) < min {
		return usagef("%s: missing %s", name, what)
	}
	if len(args) > max {
		return usagef("%s: unexpected argument %q", name, args[max])
	}
	return nil
}

// versionArg reads the V of up-to (least 1) and down-to (least 0).
func versionArg(least int64) func(c *command, args []string) error {
	return func(c *command, args []string) error {
		if err := nargs(c.spec.name, args, 1, 1, "version V"); err != nil {
			return err
		}
		v, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || v < least {
			return usagef("%s: version %q must be a whole number ≥ %d", c.spec.name, args[0], least)
		}
		c.version = v
		return nil
	}
}

func createArgs(c *command, args []string) error {
	if err := nargs("create", args, 1, 2, "migration NAME"); err != nil {
		return err
	}
	c.newName, c.kind = args[0], "sql"
	if len(args) == 2 {
		c.kind = args[1]
	}
	if c.kind != "sql" && c.kind != "go" {
		return usagef("create: kind %q must be sql or go", c.kind)
	}
	return nil
}

// session is one run of a command: what it needs, opened when first asked.
type session struct {
	c   command
	env func(string) string
	out *printer
	m   *migrate.Migrator
}

// migrations returns the migration files: -dir's, else the embedded ones.
func (s *session) migrations() (fs.FS, error) {
	if s.c.dir == "" {
		return db.Migrations, nil
	}
	st, err := os.Stat(s.c.dir)
	if err != nil {
		return nil, fmt.Errorf("-dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("-dir %s: not a directory", s.c.dir)
	}
	return os.DirFS(s.c.dir), nil
}

// goMigrations are the Go migrations compiled in (db/migrations/gomigrations),
// for the embedded migrations or -dir db/migrations; another -dir is
// another set of migrations, which they are not part of.
func (s *session) goMigrations() []migrate.Option {
	if s.c.dir != "" {
		dir, err1 := filepath.Abs(s.c.dir)
		def, err2 := filepath.Abs(defaultCreateDir)
		if err1 != nil || err2 != nil || dir != def {
			return nil
		}
	}
	return []migrate.Option{migrate.WithGoMigrations(gomigrations.All()...)}
}

// migrator connects to the database (once) and returns its Migrator.
func (s *session) migrator(ctx context.Context) (*migrate.Migrator, error) {
	if s.m != nil {
		return s.m, nil
	}
	cfg, source, err := connection(s.env, s.c.dbName)
	if err != nil {
		return nil, err
	}
	fsys, err := s.migrations()
	if err != nil {
		return nil, err
	}
	m, err := migrate.OpenConfig(ctx, cfg, fsys, slices.Concat(s.c.opts, s.goMigrations())...)
	if err != nil {
		return nil, fmt.Errorf("%w (connection from %s)", err, source)
	}
	s.m = m
	return m, nil
}

// migrate runs fn on the migrator, prints its results and the version the
// database is at.
func (s *session) migrate(ctx context.Context, fn func(m *migrate.Migrator) ([]migrate.Result, error)) error {
	m, err := s.migrator(ctx)
	if err != nil {
		return err
	}
	rs, err := fn(m)
	for _, f := range m.Baselined() {
		s.out.printf("recorded checksum of %s (applied before checksums were kept)\n", f)
	}
	for _, r := range rs {
		s.out.printf("%s\n", r)
	}
	if err != nil {
		return err
	}
	v, err := m.Version(ctx)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		s.out.printf("nothing to do; database at version %d\n", v)
	} else {
		s.out.printf("database at version %d\n", v)
	}
	return nil
}

// migrating is a command that runs one Migrator method.
func migrating(op func(*migrate.Migrator, context.Context) ([]migrate.Result, error)) func(context.Context, *session) error {
	return func(ctx context.Context, s *session) error {
		return s.migrate(ctx, func(m *migrate.Migrator) ([]migrate.Result, error) { return op(m, ctx) })
	}
}

// migratingTo is a command that runs one Migrator method up or down to V.
func migratingTo(op func(*migrate.Migrator, context.Context, int64) ([]migrate.Result, error)) func(context.Context, *session) error {
	return func(ctx context.Context, s *session) error {
		return s.migrate(ctx, func(m *migrate.Migrator) ([]migrate.Result, error) { return op(m, ctx, s.c.version) })
	}
}

// connection is the provider's configuration of database name, as
// migrations connect with it, and the variable it comes from.
func connection(env func(string) string, name string) (*pgx.ConnConfig, string, error) {
	// The provider reads DB_<NAME>_* (and DATABASE_URL): look those up.
	environ := map[string]string{}
	for _, v := range provider.EnvVars() {
		key := strings.Replace(v, "<NAME>", strings.ToUpper(name), 1)
		if val := env(key); val != "" {
			environ[key] = val
		}
	}
	dc, err := provider.LoadDatabase(environ, name)
	if err != nil {
		return nil, "", fmt.Errorf("-db %s: %w", name, err)
	}
	prefix := "DB_" + strings.ToUpper(dc.Name) + "_"
	var source string
	switch {
	case environ[prefix+"MIGRATE_URL"] != "":
		source = prefix + "MIGRATE_URL"
	case environ[prefix+"URL"] != "":
		source = prefix + "URL"
	case dc.Name == "main" && environ["DATABASE_URL"] != "":
		source = "DATABASE_URL"
	case environ[prefix+"HOST"] != "":
		source = prefix + "HOST, PORT, USER, PASSWORD…"
	default:
		// The provider's defaults would migrate whatever listens on
		// localhost:5432: refuse to guess.
		also := ""
		if dc.Name == "main" {
			also = ", DATABASE_URL"
		}
		return nil, "", fmt.Errorf("no database for -db %s: set %sMIGRATE_URL (the schema owner role), %sURL%s or %sHOST (with PORT, USER, PASSWORD…)",
			dc.Name, prefix, prefix, also, prefix)
	}
	cc, err := dc.MigrationConnConfig()
	return cc, source, err
}

func runCreate(_ context.Context, s *session) error {
	dir := s.c.dir
	if dir == "" {
		dir = defaultCreateDir
	}
	file, err := migrate.Create(dir, s.c.newName, s.c.kind, s.c.opts...)
	if err != nil {
		return err
	}
	s.out.printf("created %s\n", file)
	return nil
}

func runValidate(_ context.Context, s *session) error {
	fsys, err := s.migrations()
	if err != nil {
		return err
	}
	if err := migrate.Validate(fsys, slices.Concat(s.c.opts, s.goMigrations())...); err != nil {
		return err
	}
	s.out.printf("migrations are valid\n")
	return nil
}

func runUp(ctx context.Context, s *session) error {
	if !s.c.dryRun {
		return migrating((*migrate.Migrator).Up)(ctx, s)
	}
	m, err := s.migrator(ctx)
	if err != nil {
		return err
	}
	plan, err := m.PlanUp(ctx)
	if err != nil {
		return err
	}
	if len(plan.Migrations) == 0 {
		s.out.printf("-- dry run: nothing to do; database at version %d\n", plan.Version)
		return nil
	}
	count := fmt.Sprintf("%d migrations", len(plan.Migrations))
	if len(plan.Migrations) == 1 {
		count = "1 migration"
	}
	s.out.printf("-- dry run: %s would run on the database at version %d, in this order; nothing was changed\n", count, plan.Version)
	for _, p := range plan.Migrations {
		name := p.File
		if name == "" {
			name = fmt.Sprintf("version %d", p.Version)
		}
		switch {
		case p.Go:
			s.out.printf("\n-- %s: a Go migration; its statements are known only when it runs\n", name)
			continue
		case p.Transaction:
			s.out.printf("\n-- %s (one transaction)\nBEGIN;\n", name)
		default:
			s.out.printf("\n-- %s (NO TRANSACTION: each statement commits on its own)\n", name)
		}
		if p.EnvSub {
			s.out.printf("-- ENVSUB: shown as written; up fills each ${VAR} from the environment\n")
		}
		for _, st := range p.Statements {
			st = strings.TrimSpace(st)
			if !strings.HasSuffix(st, ";") {
				st += ";"
			}
			s.out.printf("%s\n", st)
		}
		if p.Transaction {
			s.out.printf("COMMIT;\n")
		}
	}
	return nil
}

func runFix(_ context.Context, s *session) error {
	dir := s.c.dir
	if dir == "" {
		dir = defaultCreateDir
	}
	renamed, err := migrate.Fix(dir)
	for _, r := range renamed {
		s.out.printf("renamed %s → %s\n", r.From, filepath.Base(r.To))
	}
	if err != nil {
		return err
	}
	if len(renamed) == 0 {
		s.out.printf("nothing to fix: no timestamped migrations in %s\n", dir)
		return nil
	}
	s.out.printf("renumbered %d migrations; a database that applied them under their old versions would run them again\n", len(renamed))
	return nil
}

func runVersion(ctx context.Context, s *session) error {
	m, err := s.migrator(ctx)
	if err != nil {
		return err
	}
	v, err := m.Version(ctx)
	if err != nil {
		return err
	}
	s.out.printf("%d\n", v)
	return nil
}

func runStatus(ctx context.Context, s *session) error {
	m, err := s.migrator(ctx)
	if err != nil {
		return err
	}
	ss, err := m.Status(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	// The CHECKSUM column shows only when some applied file changed or has
	// no recorded checksum yet.
	showSums := false
	for _, st := range ss {
		showSums = showSums || checksumState(st) != "" && checksumState(st) != "ok"
	}
	if showSums {
		_, _ = fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED AT\tCHECKSUM") // errors surface at Flush
	} else {
		_, _ = fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED AT")
	}
	for _, st := range ss {
		at := "pending"
		if st.State == migrate.StateApplied {
			at = st.AppliedAt.UTC().Format("2006-01-02 15:04:05 MST")
		}
		name := st.File
		if name == "" {
			name = "(go)"
		}
		if showSums {
			_, _ = fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", st.Version, name, at, checksumState(st))
		} else {
			_, _ = fmt.Fprintf(tw, "%05d\t%s\t%s\n", st.Version, name, at)
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
