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
	// config is the configuration the run used, defaults filled in.
	config Config
	// slice is how long each TPC-B variant ran per round (Config.slice).
	slice time.Duration
	// env describes the machine, versions and server settings.
	env environment
	// started is when the run began; took how long it lasted.
	started time.Time
	took    time.Duration
	// initTook is how long pgbench -i took.
	initTook time.Duration
	// cells are the TPC-B results with the clients connected straight to
	// the server, by variant (allVariants order) then by client count
	// (Config.Clients order).
	cells []cell
	// rttCells are the TPC-B results through the delaying proxy, at
	// Config.RTTClients clients, by variant then by delay (Config.RTTs
	// order); empty without Config.RTTs.
	rttCells []cell
	// consistency are the TPC-B sums after the last round.
	consistency consistency
	// load are the bulk-load results, in allLoadMethods order.
	load []loadResult
	// setup compares a cloned test database with a freshly migrated one.
	setup setupResult
}

// cell is one TPC-B variant under one condition, summed over the rounds.
type cell struct {
	Variant variant
	Clients int
	// Proxied says the clients connected through the delaying proxy, which
	// added RTT to every round trip (0: the proxy's own cost, no delay).
	// MeasuredRTT is what it added: twice the mean time it held a chunk.
	Proxied          bool
	RTT, MeasuredRTT time.Duration
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
	// RoundTPS is the TPS of each round, in the order the rounds ran: the
	// per-round ratios of a spread.
	RoundTPS []float64

	latencies []time.Duration
	prof      profile
}

func (c *cell) add(res sliceResult) {
	c.Transactions += res.n
	c.Failed += res.failed
	c.Elapsed += res.elapsed
	c.latencies = append(c.latencies, res.latencies...)
	c.prof.roundTrips += res.prof.roundTrips
	c.prof.allocs += res.prof.allocs
	c.prof.clientCPU += res.prof.clientCPU
	c.prof.serverCPU += res.prof.serverCPU
	c.prof.proxyChunks += res.prof.proxyChunks
	c.prof.proxyHeld += res.prof.proxyHeld
	c.RoundTPS = append(c.RoundTPS, ratio(float64(res.n), res.elapsed.Seconds()))
}

func (c *cell) finish() {
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
	if c.prof.proxyChunks > 0 {
		c.MeasuredRTT = 2 * c.prof.proxyHeld / time.Duration(c.prof.proxyChunks)
	}
	c.latencies = nil
}

// consistency holds the sums the TPC-B transaction keeps equal: every
// transaction adds one delta to an account, a teller, a branch and the
// history.
type consistency struct {
	Accounts, Tellers, Branches, History int64
	// HistoryRows counts the transactions committed since pgbench -i.
	HistoryRows int64
}

// ok reports whether the four sums agree.
func (c consistency) ok() bool {
	return c.Accounts == c.Tellers && c.Tellers == c.Branches && c.Branches == c.History
}

// cell returns the result of variant v at clients connected straight to
// the server, if measured.
func (r *Report) cell(v variant, clients int) (cell, bool) {
	for _, c := range r.cells {
		if c.Variant == v && c.Clients == clients {
			return c, true
		}
	}
	return cell{}, false
}

// rttCell returns the result of variant v through the proxy adding rtt, if
// measured.
func (r *Report) rttCell(v variant, rtt time.Duration) (cell, bool) {
	for _, c := range r.rttCells {
		if c.Variant == v && c.RTT == rtt {
			return c, true
		}
	}
	return cell{}, false
}

// MeasuredRTT reports whether the run measured TPC-B through the delaying
// proxy (Config.RTTs), so that [Report.WriteRTTSVG] has lines to draw.
func (r *Report) MeasuredRTT() bool { return len(r.rttCells) > 0 }

// peer returns variant v's cell under c's condition.
func (r *Report) peer(c cell, v variant) (cell, bool) {
	if c.Proxied {
		return r.rttCell(v, c.RTT)
	}
	return r.cell(v, c.Clients)
}

// compare is c's TPS over variant base's under the same condition, with the
// range of the per-round ratios; zero when base was not measured.
func (r *Report) compare(c cell, base variant) spread {
	b, ok := r.peer(c, base)
	if !ok {
		return spread{}
	}
	return newSpread(c.TPS, b.TPS, c.RoundTPS, b.RoundTPS)
}

// vsPgbench is c's TPS over pgbench TPC-B's under the same condition.
func (r *Report) vsPgbench(c cell) spread { return r.compare(c, pgbenchTPCB) }

// vsA is c's TPS over variant (a)'s under the same condition.
func (r *Report) vsA(c cell) spread { return r.compare(c, pgxBegin) }

// loadResult returns the result of method m, if measured.
func (r *Report) loadResult(m loadMethod) (loadResult, bool) {
	for _, l := range r.load {
		if l.Method == m {
			return l, true
		}
	}
	return loadResult{}, false
}

// vsPsql is l's throughput over psql \copy's: psql's median time over
// l's, with the range of the same ratio in each repetition (the methods take
// turns within one).
func (r *Report) vsPsql(l loadResult) spread {
	base, _ := r.loadResult(loadPsqlCopy)
	return newSpread(base.Median.Seconds(), l.Median.Seconds(), seconds(base.Times), seconds(l.Times))
}

// seconds returns ds in seconds.
func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// target is one of the issues' goals, reported and never asserted.
type target struct {
	// Name says what is compared, e.g. "(c) vs pgbench TPC-B".
	Name string
	// Clients is the client count, 0 for a goal that has none; RTT the delay
	// the proxy added when Proxied.
	Clients int
	Proxied bool
	RTT     time.Duration
	// Want is the ratio aimed for; Got the one measured, with its range
	// over the rounds.
	Want float64
	Got  spread
}

// met reports whether Got reaches Want over the whole cells.
func (t target) met() bool { return t.Got.Ratio >= t.Want }

// verdict says whether the target was met, and whether the rounds agree:
// "met" and "MISSED" when every round's ratio is on the same side of Want
// as the whole cell's, else "met, not in every round" or "MISSED, met in
// some rounds" (the difference is within the noise).
func (t target) verdict() string {
	switch {
	case t.met() && t.Got.Min >= t.Want:
		return "met"
	case t.met():
		return "met, not in every round"
	case t.Got.Max >= t.Want:
		return "MISSED, met in some rounds"
	default:
		return "MISSED"
	}
}

// where names the target's condition: "4 clients", "1 client, 1ms RTT", or
// "-" for a goal without one.
func (t target) where() string {
	switch {
	case t.Clients == 0:
		return "-"
	case t.Proxied:
		return fmt.Sprintf("%s, %v RTT", clientsLabel(t.Clients), t.RTT)
	default:
		return clientsLabel(t.Clients)
	}
}

// targetRTT is the delay of the round-trip target.
const targetRTT = time.Millisecond

// targets returns the goals of the benchmark issues with what was measured:
// the write-behind ones first, then the earlier ones.
func (r *Report) targets() []target {
	var ts []target
	for _, n := range r.config.Clients {
		c, _ := r.cell(uowWriteBehind, n)
		want := 1.15
		if n == 1 {
			want = 1.3
		}
		ts = append(ts, target{Name: "(e) WriteBehind vs pgbench TPC-B", Clients: n, Want: want, Got: r.vsPgbench(c)})
	}
	if c, ok := r.rttCell(uowWriteBehind, targetRTT); ok {
		ts = append(ts, target{Name: "(e) WriteBehind vs pgbench TPC-B", Clients: c.Clients, Proxied: true, RTT: targetRTT, Want: 3, Got: r.vsPgbench(c)})
	}
	for _, n := range r.config.Clients {
		c, _ := r.cell(uowTyped, n)
		ts = append(ts, target{Name: "(c) uow.Do + tpcbgen vs (a) pgx Begin/Commit", Clients: n, Want: 1.0, Got: r.vsA(c)})
	}
	for _, n := range r.config.Clients {
		c, _ := r.cell(uowTyped, n)
		ts = append(ts, target{Name: "(c) uow.Do + tpcbgen vs pgbench TPC-B", Clients: n, Want: 1.0, Got: r.vsPgbench(c)})
	}
	for _, n := range r.config.Clients {
		c, _ := r.cell(uowBatch, n)
		ts = append(ts, target{Name: "(d) uow.Do + batch vs pgbench TPC-B", Clients: n, Want: 1.2, Got: r.vsPgbench(c)})
	}
	if l, ok := r.loadResult(loadCopyFrom); ok {
		ts = append(ts, target{Name: `:copyfrom vs psql \copy`, Want: 0.8, Got: r.vsPsql(l)})
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

	p("TPC-B, scale %d, %v per cell (%d rounds × %v, interleaved); a ratio is over the whole cells, (lowest–highest) over the rounds\n",
		r.config.Scale, r.slice*time.Duration(r.config.Rounds), r.config.Rounds, r.slice)
	rows := [][]string{{"variant", "clients", "TPS", "p50", "p99", "× pgbench", "× (a)"}}
	for _, c := range r.cells {
		rows = append(rows, []string{string(c.Variant), fmt.Sprint(c.Clients), fmt.Sprintf("%.0f", c.TPS),
			ms(c.P50), ms(c.P99), r.vsPgbench(c).String(), r.vsA(c).String()})
	}
	table(rows)

	if len(r.rttCells) > 0 {
		p("\nTPC-B through the delaying proxy, %s\n", clientsLabel(r.config.RTTClients))
		rows = [][]string{{"variant", "added RTT", "measured", "TPS", "p50", "p99", "round trips", "× pgbench", "× (a)"}}
		for _, c := range r.rttCells {
			rows = append(rows, r.rttRow(c))
		}
		table(rows)
	}

	p("\nwhere the time goes, per transaction (— where not measurable)\n")
	rows = [][]string{{"variant", "clients", "round trips", "allocs", "client CPU", "server CPU", "cores busy"}}
	for _, c := range r.cells {
		rows = append(rows, r.profileRow(c))
	}
	table(rows)

	if len(r.load) == 0 {
		p("\nbulk load: not measured (it needs the example's products table, which make remove-example took out)\n")
	} else {
		p("\nbulk load, %d rows, median of %d\n", r.config.CopyRows, r.config.CopyReps)
		rows = [][]string{{"method", "median", "rows/s", "× psql"}}
		for _, l := range r.load {
			rows = append(rows, []string{string(l.Method), ms(l.Median), fmt.Sprintf("%.0f", l.rowsPerSecond()), r.vsPsql(l).String()})
		}
		table(rows)
	}

	s := r.setup
	p("\na migrated database for a test, median of %d\n", s.Reps)
	rows = [][]string{{"way", "median", "× clone"}}
	for _, w := range r.setupWays() {
		rows = append(rows, []string{w.name, ms(w.d), w.vsClone(s).String()})
	}
	table(rows)

	p("\ntargets (reported, not asserted)\n")
	rows = nil
	for _, t := range r.targets() {
		rows = append(rows, []string{t.Name, t.where(), fmt.Sprintf("want ≥ %.2f×", t.Want), "got " + t.Got.times(), t.verdict()})
	}
	table(rows)

	c := r.consistency
	p("\ndata check: sum(abalance)=%d sum(tbalance)=%d sum(bbalance)=%d sum(history.delta)=%d over %d transactions: %s\n",
		c.Accounts, c.Tellers, c.Branches, c.History, c.HistoryRows, map[bool]string{true: "consistent", false: "INCONSISTENT"}[c.ok()])
	_, err := io.WriteString(w, b.String())
	return err
}

// setupWay is one line of the database set-up table.
type setupWay struct {
	name, md string // plain text, Markdown
	d        time.Duration
	reps     []time.Duration // each repetition's, for the range of the ratio
}

// vsClone is w's time over the dbtest-style clone's.
func (w setupWay) vsClone(s setupResult) spread {
	return newSpread(w.d.Seconds(), s.Clone.Seconds(), seconds(w.reps), seconds(s.reps.clone))
}

func (r *Report) setupWays() []setupWay {
	s := r.setup
	ways := []setupWay{
		{"dbtest-style clone (pgtestdb)", "dbtest-style: pgtestdb clones the migrated template (`CREATE DATABASE … TEMPLATE`), as `dbtest.New` does when no clone made ahead is ready (`go test ./dbtest -bench New` measures both)", s.Clone, s.reps.clone},
		{"fresh database + migrate up", "fresh: `CREATE DATABASE`, then migrate up", s.Fresh, s.reps.fresh},
		{"  of which CREATE DATABASE", "… of which `CREATE DATABASE` (from template1)", s.CreateDB, s.reps.createDB},
		{fmt.Sprintf("  of which migrate up (%d migrations)", s.Migrations), fmt.Sprintf("… of which migrate up (%d migrations: open, up, close)", s.Migrations), s.MigrateUp, s.reps.migrateUp},
		{"bare clone, no pgtestdb", "bare clone: `CREATE DATABASE … TEMPLATE` of the same template, no pgtestdb", s.BareClone, s.reps.bare},
	}
	if s.BareCloneFileCopy > 0 {
		ways = append(ways, setupWay{"bare clone, STRATEGY FILE_COPY", "bare clone with `STRATEGY FILE_COPY` (PostgreSQL 15's default is WAL_LOG)", s.BareCloneFileCopy, s.reps.bareFileCopy})
	}
	return append(ways, setupWay{"first dbtest-style call (makes the template)", "first dbtest-style call: creates and migrates the template (once per schema and server)", s.FirstClone, nil})
}

// profileRow is c's profile as table cells.
func (r *Report) profileRow(c cell) []string {
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

// rttRow is a proxied cell as table cells.
func (r *Report) rttRow(c cell) []string {
	trips := "—"
	if c.RoundTrips > 0 {
		trips = fmt.Sprintf("%.2f", c.RoundTrips)
	}
	return []string{string(c.Variant), rttLabel(c.RTT), ms(c.MeasuredRTT), fmt.Sprintf("%.0f", c.TPS), ms(c.P50), ms(c.P99),
		trips, r.vsPgbench(c).String(), r.vsA(c).String()}
}

// rttLabel formats a round-trip delay in milliseconds: "0 ms", "0.5 ms".
func rttLabel(d time.Duration) string {
	return fmt.Sprintf("%g ms", float64(d)/float64(time.Millisecond))
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
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}

// The markers around the generated part of docs/BENCHMARKS.md.
const (
	beginMarker = "<!-- bench:results:begin (generated by go run ./cmd/bench; edits inside are overwritten) -->"
	endMarker   = "<!-- bench:results:end -->"
)

// Charts are the paths of the charts a Markdown report links, relative to
// the document: TPS against clients (Report.WriteSVG) and TPS against the
// added round-trip time (Report.WriteRTTSVG, linked when the run
// [Report.MeasuredRTT]).
type Charts struct {
	TPS, RTT string
}

// writeMarkdown writes the results as Markdown: machine and versions, the
// TPC-B tables with the charts, targets, bulk load and database set-up.
func (r *Report) writeMarkdown(w io.Writer, charts Charts) error {
	var b strings.Builder
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	e := r.env
	cmd := r.config.Command
	if cmd == "" {
		cmd = "go run ./cmd/bench"
	}
	p("Measured on %s in %s with\n\n```\n%s\n```\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second), cmd)

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
		"Each cell ran %s: %d rounds of %s, every variant under every condition in each round, in an order "+
		"rotating from round to round. TPS is committed transactions over measured time summed over the rounds; "+
		"p50 and p99 are over every transaction's latency. A ratio is the cell's TPS over the baseline's; in brackets, "+
		"the lowest and highest of the same ratio taken round by round (each round's TPS over the baseline's in that round): "+
		"a difference inside that range is noise. pgbench ran as "+
		"`pgbench -n -M prepared -c C -j min(C, GOMAXPROCS) -T %d -l` (`-S` for select-only); its TPS excludes "+
		"its connection time, and the Go variants open their pool's connections before their clock starts.\n\n",
		r.config.Scale, 100_000*r.config.Scale, 10*r.config.Scale, r.config.Scale, r.config.Scale, r.initTook.Round(100*time.Millisecond),
		r.slice*time.Duration(r.config.Rounds), r.config.Rounds, r.slice, int(r.slice/time.Second))
	p("![TPC-B transactions per second against clients, per variant](%s)\n\n", charts.TPS)
	p("| variant | clients | TPS | p50 | p99 | × pgbench TPC-B (rounds) | × (a) (rounds) |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.cells {
		p("| %s | %d | %.0f | %s | %s | %s | %s |\n", c.Variant, c.Clients, c.TPS, ms(c.P50), ms(c.P99), r.vsPgbench(c), r.vsA(c))
	}

	if len(r.rttCells) > 0 {
		var delays []string
		for _, d := range r.config.RTTs {
			delays = append(delays, rttLabel(d))
		}
		where := "in the bench process"
		if r.config.ProxyProcess {
			where = "a child process of the bench, so that it shares neither the Go clients' scheduler nor their CPU time"
		}
		p("\n#### With network latency\n\nThe same variants at %s, through a TCP proxy on 127.0.0.1 (%s) that "+
			"holds every chunk it reads for half the added round-trip time (%s) each way before writing it on. Per direction "+
			"one goroutine reads and stamps each chunk with its due time, another writes each when due: chunks in flight are "+
			"held side by side, so the proxy adds latency, not a bandwidth cap. The Go variants' pools dial the proxy; pgbench "+
			"reaches it with `-h 127.0.0.1 -p PORT`. These cells take their turns in the same rounds as the others. "+
			"*Measured* is what the proxy really added: twice the mean time it held a chunk. It is never less than the "+
			"nominal delay and is more by the proxy's wake-up latency, which grows with the load on the machine, so read a "+
			"row against its measured delay. At 0 ms the proxy only forwards: against the table above, that "+
			"row shows its own cost. Its CPU comes from the same cores as everyone's.\n\n",
			clientsLabel(r.config.RTTClients), where, strings.Join(delays, ", "))
		if charts.RTT != "" {
			p("![TPC-B transactions per second against added round-trip time, per variant](%s)\n\n", charts.RTT)
		}
		p("| variant | added RTT | measured | TPS | p50 | p99 | round trips | × pgbench TPC-B (rounds) | × (a) (rounds) |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, c := range r.rttCells {
			p("| %s |\n", strings.Join(r.rttRow(c), " | "))
		}
	}

	p("\n#### Where the time goes\n\nPer transaction, over the cells straight to the server: the round trips the client made "+
		"(its writes to the socket; pgx flushes once per round trip), its heap allocations, the CPU time of the client "+
		"process (pgbench, or this Go process) and of the server's processes (read from /proc; only for a server on this "+
		"machine), and the CPU time of both over the measured time (\"cores busy\": near %d, the machine was the limit). "+
		"pgbench's round trips are not counted: its tpcb-like script makes 7 (BEGIN, five statements, END), select-only 1; "+
		"its CPU times include its connecting and its transaction log (-l), and the server's include those connections' start and exit.\n\n", e.CPUs)
	p("| variant | clients | round trips | allocs | client CPU | server CPU | cores busy |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.cells {
		p("| %s |\n", strings.Join(r.profileRow(c), " | "))
	}

	c := r.consistency
	check := "consistent"
	if !c.ok() {
		check = "**INCONSISTENT**"
	}
	p("\nData check after the last round: sum(abalance) = %d, sum(tbalance) = %d, sum(bbalance) = %d, "+
		"sum(history.delta) = %d over %d committed transactions: %s.\n\n", c.Accounts, c.Tellers, c.Branches, c.History, c.HistoryRows, check)

	p("### Targets (reported, not asserted)\n\n")
	p("*Met* and *MISSED* when every round agrees with the whole cells; otherwise the verdict says that the difference " +
		"is within the noise.\n\n")
	p("| target | where | want | measured (rounds) | |\n|---|---|--:|--:|---|\n")
	for _, t := range r.targets() {
		p("| %s | %s | ≥ %.2f× | %s | %s |\n", t.Name, t.where(), t.Want, t.Got.times(), t.verdict())
	}

	if len(r.load) == 0 {
		p("\n### Bulk load: not measured\n\nIt writes into the example's `products` table, which `make remove-example` took out.\n")
	} else {
		p("\n### Bulk load: %d products, median of %d\n\n", r.config.CopyRows, r.config.CopyReps)
		p("The same rows each time (a quarter without description), into an empty `products` table of the ERP schema " +
			"(unique sku, check constraints, identity); the methods take turns, and the range is over the repetitions.\n\n")
		p("| method | median | rows/s | × psql \\copy (reps) |\n|---|--:|--:|--:|\n")
		for _, l := range r.load {
			p("| %s | %s | %.0f | %s |\n", l.Method, ms(l.Median), l.rowsPerSecond(), r.vsPsql(l))
		}
	}

	s := r.setup
	p("\n### A migrated database for a test: median of %d\n\n", s.Reps)
	p("Both ways end with a pinged pool on the new database; they take turns, and the range is over the repetitions.\n\n")
	p("| way | median | × dbtest-style clone (reps) |\n|---|--:|--:|\n")
	for _, w := range r.setupWays() {
		p("| %s | %s | %s |\n", w.md, ms(w.d), w.vsClone(s))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// UpdateMarkdown returns doc with the part between the result markers
// replaced by the report's Markdown, so that the hand-written analysis around
// it survives a new run. A doc without the markers (or empty) becomes a new
// document around the results.
func (r *Report) UpdateMarkdown(doc []byte, charts Charts) ([]byte, error) {
	var gen bytes.Buffer
	if err := r.writeMarkdown(&gen, charts); err != nil {
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
