package bench

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what Run measured.
type Report struct {
	// Config is the configuration the run used, defaults filled in.
	Config Config
	// Slice is how long each TPC-B variant ran per round (Config.Slice).
	Slice time.Duration
	// Env describes the machine, versions and server settings.
	Env Environment
	// Started is when the run began; Took how long it lasted.
	Started time.Time
	Took    time.Duration
	// InitTook is how long pgbench -i took.
	InitTook time.Duration
	// Cells are the TPC-B results, by variant (AllVariants order) then by
	// client count (Config.Clients order).
	Cells []Cell
	// Consistency are the TPC-B sums after the last round.
	Consistency Consistency
	// Load are the bulk-load results, in AllLoadMethods order.
	Load []LoadResult
	// Setup compares a cloned test database with a freshly migrated one.
	Setup SetupResult
}

// Cell is one TPC-B variant at one client count, summed over the rounds.
type Cell struct {
	Variant Variant
	Clients int
	// Transactions is the number of committed transactions; Failed the
	// number pgbench reports as failed (the Go variants stop at the first).
	Transactions, Failed int64
	// Elapsed is the measured time, summed over the rounds.
	Elapsed time.Duration
	// TPS is Transactions over Elapsed.
	TPS float64
	// P50 and P99 are percentiles of the per-transaction latency, over all
	// transactions of all rounds.
	P50, P99 time.Duration
	// Profile: per transaction, where it could be measured (0 otherwise),
	// the round trips the client made (writes to the socket; Go variants),
	// its heap allocations (Go variants), the CPU time of the client process
	// (pgbench or this one) and of the server processes (a server on this
	// machine only).
	RoundTrips, Allocs   float64
	ClientCPU, ServerCPU time.Duration
	// CoresBusy is the client's and the server's CPU time over the measured
	// time: near the machine's core count, the cell was CPU-bound.
	CoresBusy float64

	latencies []time.Duration
	prof      profile
}

func (c *Cell) add(res sliceResult) {
	c.Transactions += res.n
	c.Failed += res.failed
	c.Elapsed += res.elapsed
	c.latencies = append(c.latencies, res.latencies...)
	c.prof.roundTrips += res.prof.roundTrips
	c.prof.allocs += res.prof.allocs
	c.prof.clientCPU += res.prof.clientCPU
	c.prof.serverCPU += res.prof.serverCPU
}

func (c *Cell) finish() {
	slices.Sort(c.latencies)
	c.P50, c.P99 = percentile(c.latencies, 50), percentile(c.latencies, 99)
	c.TPS = ratio(float64(c.Transactions), c.Elapsed.Seconds())
	if n := float64(c.Transactions); n > 0 {
		c.RoundTrips = float64(c.prof.roundTrips) / n
		c.Allocs = float64(c.prof.allocs) / n
		c.ClientCPU = time.Duration(float64(c.prof.clientCPU) / n)
		c.ServerCPU = time.Duration(float64(c.prof.serverCPU) / n)
	}
	if c.prof.serverCPU > 0 {
		c.CoresBusy = ratio((c.prof.clientCPU + c.prof.serverCPU).Seconds(), c.Elapsed.Seconds())
	}
	c.latencies = nil
}

// Consistency holds the sums the TPC-B transaction keeps equal: every
// transaction adds one delta to an account, a teller, a branch and the
// history.
type Consistency struct {
	Accounts, Tellers, Branches, History int64
	// HistoryRows counts the transactions committed since pgbench -i.
	HistoryRows int64
}

// OK reports whether the four sums agree.
func (c Consistency) OK() bool {
	return c.Accounts == c.Tellers && c.Tellers == c.Branches && c.Branches == c.History
}

// Cell returns the result of variant v at clients, if measured.
func (r *Report) Cell(v Variant, clients int) (Cell, bool) {
	for _, c := range r.Cells {
		if c.Variant == v && c.Clients == clients {
			return c, true
		}
	}
	return Cell{}, false
}

// VsPgbench is c's TPS over pgbench TPC-B's at the same client count.
func (r *Report) VsPgbench(c Cell) float64 {
	base, _ := r.Cell(PgbenchTPCB, c.Clients)
	return ratio(c.TPS, base.TPS)
}

// VsA is c's TPS over variant (a)'s at the same client count.
func (r *Report) VsA(c Cell) float64 {
	base, _ := r.Cell(PgxBegin, c.Clients)
	return ratio(c.TPS, base.TPS)
}

// LoadResult returns the result of method m, if measured.
func (r *Report) LoadResult(m LoadMethod) (LoadResult, bool) {
	for _, l := range r.Load {
		if l.Method == m {
			return l, true
		}
	}
	return LoadResult{}, false
}

// VsPsql is l's throughput over psql \copy's (its median time over l's).
func (r *Report) VsPsql(l LoadResult) float64 {
	base, _ := r.LoadResult(LoadPsqlCopy)
	return ratio(base.Median.Seconds(), l.Median.Seconds())
}

// Target is one of the goals, reported and never asserted.
type Target struct {
	// Name says what is compared, e.g. "(c) vs pgbench TPC-B".
	Name string
	// Clients is the client count, 0 for a goal that has none.
	Clients int
	// Want is the ratio aimed for; Got the one measured.
	Want, Got float64
}

// Met reports whether Got reaches Want.
func (t Target) Met() bool { return t.Got >= t.Want }

// Targets returns the goals of the benchmark issue with what was measured.
func (r *Report) Targets() []Target {
	var ts []Target
	for _, n := range r.Config.Clients {
		c, _ := r.Cell(UowTyped, n)
		ts = append(ts, Target{Name: "(c) uow.Do + tpcbgen vs pgbench TPC-B", Clients: n, Want: 1.0, Got: r.VsPgbench(c)})
	}
	for _, n := range r.Config.Clients {
		c, _ := r.Cell(UowBatch, n)
		ts = append(ts, Target{Name: "(d) uow.Do + batch vs pgbench TPC-B", Clients: n, Want: 1.2, Got: r.VsPgbench(c)})
	}
	if c, ok := r.Cell(UowTyped, 1); ok {
		ts = append(ts, Target{Name: "(c) uow.Do + tpcbgen vs (a) pgx Begin/Commit", Clients: 1, Want: 1.1, Got: r.VsA(c)})
	}
	if l, ok := r.LoadResult(LoadCopyFrom); ok {
		ts = append(ts, Target{Name: `:copyfrom vs psql \copy`, Want: 0.8, Got: r.VsPsql(l)})
	}
	return ts
}

// WriteText prints the results as plain-text tables.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	table := func(rows [][]string) {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, row := range rows {
			_, _ = fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		_ = tw.Flush()
	}

	p("TPC-B, scale %d, %v per cell (%d rounds × %v, interleaved)\n",
		r.Config.Scale, r.Slice*time.Duration(r.Config.Rounds), r.Config.Rounds, r.Slice)
	rows := [][]string{{"variant", "clients", "TPS", "p50", "p99", "× pgbench", "× (a)"}}
	for _, c := range r.Cells {
		rows = append(rows, []string{string(c.Variant), fmt.Sprint(c.Clients), fmt.Sprintf("%.0f", c.TPS),
			ms(c.P50), ms(c.P99), fmt.Sprintf("%.2f", r.VsPgbench(c)), fmt.Sprintf("%.2f", r.VsA(c))})
	}
	table(rows)

	p("\nwhere the time goes, per transaction (— where not measurable)\n")
	rows = [][]string{{"variant", "clients", "round trips", "allocs", "client CPU", "server CPU", "cores busy"}}
	for _, c := range r.Cells {
		rows = append(rows, r.profileRow(c))
	}
	table(rows)

	p("\nbulk load, %d rows, median of %d\n", r.Config.CopyRows, r.Config.CopyReps)
	rows = [][]string{{"method", "median", "rows/s", "× psql"}}
	for _, l := range r.Load {
		rows = append(rows, []string{string(l.Method), ms(l.Median), fmt.Sprintf("%.0f", l.RowsPerSecond()), fmt.Sprintf("%.2f", r.VsPsql(l))})
	}
	table(rows)

	s := r.Setup
	p("\na migrated database for a test, median of %d\n", s.Reps)
	rows = [][]string{{"way", "median", "× clone"}}
	for _, w := range r.setupWays() {
		rows = append(rows, []string{w.name, ms(w.d), fmt.Sprintf("%.2f", ratio(w.d.Seconds(), s.Clone.Seconds()))})
	}
	table(rows)

	p("\ntargets (reported, not asserted)\n")
	rows = nil
	for _, t := range r.Targets() {
		rows = append(rows, []string{t.Name, clientsLabel(t.Clients), fmt.Sprintf("want ≥ %.1f×", t.Want), fmt.Sprintf("got %.2f×", t.Got), metLabel(t.Met())})
	}
	table(rows)

	c := r.Consistency
	p("\ndata check: sum(abalance)=%d sum(tbalance)=%d sum(bbalance)=%d sum(history.delta)=%d over %d transactions: %s\n",
		c.Accounts, c.Tellers, c.Branches, c.History, c.HistoryRows, map[bool]string{true: "consistent", false: "INCONSISTENT"}[c.OK()])
	_, err := io.WriteString(w, b.String())
	return err
}

// setupWay is one line of the database set-up table.
type setupWay struct {
	name, md string // plain text, Markdown
	d        time.Duration
}

func (r *Report) setupWays() []setupWay {
	s := r.Setup
	ways := []setupWay{
		{"dbtest-style clone (pgtestdb)", "dbtest-style: pgtestdb clones the migrated template (`CREATE DATABASE … TEMPLATE`), as `dbtest.New` does", s.Clone},
		{"fresh database + migrate up", "fresh: `CREATE DATABASE`, then migrate up", s.Fresh},
		{"  of which CREATE DATABASE", "… of which `CREATE DATABASE` (from template1)", s.CreateDB},
		{fmt.Sprintf("  of which migrate up (%d migrations)", s.Migrations), fmt.Sprintf("… of which migrate up (%d migrations: open, up, close)", s.Migrations), s.MigrateUp},
		{"bare clone, no pgtestdb", "bare clone: `CREATE DATABASE … TEMPLATE` of the same template, no pgtestdb", s.BareClone},
	}
	if s.BareCloneFileCopy > 0 {
		ways = append(ways, setupWay{"bare clone, STRATEGY FILE_COPY", "bare clone with `STRATEGY FILE_COPY` (PostgreSQL 15's default is WAL_LOG)", s.BareCloneFileCopy})
	}
	return append(ways, setupWay{"first dbtest-style call (makes the template)", "first dbtest-style call: creates and migrates the template (once per schema and server)", s.FirstClone})
}

// profileRow is c's profile as table cells.
func (r *Report) profileRow(c Cell) []string {
	num := func(v float64, format string) string {
		if v == 0 {
			return "—"
		}
		return fmt.Sprintf(format, v)
	}
	us := func(d time.Duration) string {
		if d == 0 {
			return "—"
		}
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
	return []string{string(c.Variant), fmt.Sprint(c.Clients), num(c.RoundTrips, "%.2f"), num(c.Allocs, "%.0f"),
		us(c.ClientCPU), us(c.ServerCPU), num(c.CoresBusy, "%.2f")}
}

// ms formats d in milliseconds with a precision that suits it.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func clientsLabel(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d clients", n)
}

func metLabel(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// The markers around the generated part of docs/BENCHMARKS.md.
const (
	beginMarker = "<!-- bench:results:begin (generated by go run ./bench/cmd/bench; edits inside are overwritten) -->"
	endMarker   = "<!-- bench:results:end -->"
)

// WriteMarkdown writes the results as Markdown: machine and versions, the
// TPC-B table with the chart (chart is its path relative to the document),
// targets, bulk load and database set-up.
func (r *Report) WriteMarkdown(w io.Writer, chart string) error {
	var b strings.Builder
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	e := r.Env
	cmd := r.Config.Command
	if cmd == "" {
		cmd = "go run ./bench/cmd/bench"
	}
	p("Measured on %s in %s with\n\n```\n%s\n```\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second), cmd)

	p("### Machine, versions, server settings\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %d logical CPUs (GOMAXPROCS %d): %s |\n", e.CPUs, e.GOMAXPROCS, e.CPUModel)
	p("| OS | %s/%s; server, pgbench and the Go clients share the machine |\n", e.OS, e.Arch)
	p("| Load average (1, 5, 15 min) | %s at the start, %s at the end |\n", e.LoadBefore, e.LoadAfter)
	p("| Go | %s |\n| pgx | %s |\n", e.GoVersion, e.PgxVersion)
	p("| PostgreSQL | %s (localpg source: %s) |\n", e.Server, e.ServerSource)
	p("| pgbench, psql | %s; %s |\n", e.Pgbench, e.Psql)
	var settings []string
	for _, s := range e.Settings {
		settings = append(settings, fmt.Sprintf("`%s=%s`", s.Name, s.Value))
	}
	p("| Server settings | %s |\n\n", strings.Join(settings, " "))

	p("### TPC-B\n\n")
	p("Scale %d (accounts: %d, tellers: %d, branches: %d), initialised by `pgbench -i -q -s %d` in %s. "+
		"Each cell ran %s: %d rounds of %s, every variant at every client count in each round, in an order "+
		"rotating from round to round. TPS is committed transactions over measured time summed over the rounds; "+
		"p50 and p99 are over every transaction's latency. pgbench ran as "+
		"`pgbench -n -M prepared -c C -j min(C, GOMAXPROCS) -T %d -l` (`-S` for select-only); its TPS excludes "+
		"its connection time, and the Go variants open their pool's connections before their clock starts.\n\n",
		r.Config.Scale, 100_000*r.Config.Scale, 10*r.Config.Scale, r.Config.Scale, r.Config.Scale, r.InitTook.Round(100*time.Millisecond),
		r.Slice*time.Duration(r.Config.Rounds), r.Config.Rounds, r.Slice, int(r.Slice/time.Second))
	p("![TPC-B transactions per second against clients, per variant](%s)\n\n", chart)
	p("| variant | clients | TPS | p50 | p99 | × pgbench TPC-B | × (a) |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.Cells {
		p("| %s | %d | %.0f | %s | %s | %.2f | %.2f |\n", c.Variant, c.Clients, c.TPS, ms(c.P50), ms(c.P99), r.VsPgbench(c), r.VsA(c))
	}
	p("\n#### Where the time goes\n\nPer transaction, over the same cells: the round trips the client made "+
		"(its writes to the socket; pgx flushes once per round trip), its heap allocations, the CPU time of the client "+
		"process (pgbench, or this Go process) and of the server's processes (read from /proc; only for a server on this "+
		"machine), and the CPU time of both over the measured time (\"cores busy\": near %d, the machine was the limit). "+
		"pgbench's round trips are not counted: its tpcb-like script makes 7 (BEGIN, five statements, END), select-only 1; "+
		"its CPU times include its connecting and its transaction log (-l), and the server's include those connections' start and exit.\n\n", e.CPUs)
	p("| variant | clients | round trips | allocs | client CPU | server CPU | cores busy |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.Cells {
		p("| %s |\n", strings.Join(r.profileRow(c), " | "))
	}

	c := r.Consistency
	check := "consistent"
	if !c.OK() {
		check = "**INCONSISTENT**"
	}
	p("\nData check after the last round: sum(abalance) = %d, sum(tbalance) = %d, sum(bbalance) = %d, "+
		"sum(history.delta) = %d over %d committed transactions: %s.\n\n", c.Accounts, c.Tellers, c.Branches, c.History, c.HistoryRows, check)

	p("### Targets (reported, not asserted)\n\n| target | clients | want | measured | |\n|---|--:|--:|--:|---|\n")
	for _, t := range r.Targets() {
		n := "-"
		if t.Clients > 0 {
			n = fmt.Sprint(t.Clients)
		}
		p("| %s | %s | ≥ %.1f× | %.2f× | %s |\n", t.Name, n, t.Want, t.Got, metLabel(t.Met()))
	}

	p("\n### Bulk load: %d products, median of %d\n\n", r.Config.CopyRows, r.Config.CopyReps)
	p("The same rows each time (a quarter without description), into an empty `products` table of the ERP schema " +
		"(unique sku, check constraints, identity); the methods take turns.\n\n")
	p("| method | median | rows/s | × psql \\copy |\n|---|--:|--:|--:|\n")
	for _, l := range r.Load {
		p("| %s | %s | %.0f | %.2f |\n", l.Method, ms(l.Median), l.RowsPerSecond(), r.VsPsql(l))
	}

	s := r.Setup
	p("\n### A migrated database for a test: median of %d\n\n", s.Reps)
	p("Both ways end with a pinged pool on the new database; they take turns.\n\n")
	p("| way | median | × dbtest-style clone |\n|---|--:|--:|\n")
	for _, w := range r.setupWays() {
		p("| %s | %s | %.2f |\n", w.md, ms(w.d), ratio(w.d.Seconds(), s.Clone.Seconds()))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// UpdateMarkdown returns doc with the part between the result markers
// replaced by the report's Markdown, so that the hand-written analysis around
// it survives a new run. A doc without the markers (or empty) becomes a new
// document around the results.
func (r *Report) UpdateMarkdown(doc []byte, chart string) ([]byte, error) {
	var gen bytes.Buffer
	if err := r.WriteMarkdown(&gen, chart); err != nil {
		return nil, err
	}
	results := beginMarker + "\n" + gen.String() + endMarker
	s := string(doc)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return []byte("# Benchmarks\n\n" + results + "\n"), nil
	}
	return []byte(s[:i] + results + s[j+len(endMarker):]), nil
}
