package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
)

// TestRunMeasuresEveryVariant runs the whole pipeline at a tiny size and
// checks that the report is complete and sane: every variant at every client
// count and through the delaying proxy, numbers that make sense, the TPC-B
// sums still equal. It asserts no speed: a test that fails on a wall-clock
// number measures the machine.
func TestRunMeasuresEveryVariant(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"pgbench", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := exec.LookPath("/usr/lib/postgresql/15/bin/" + tool); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s is not installed; CI=true: the benchmark pipeline must be tried (apt-get install postgresql)", tool)
				}
				t.Skipf("%s is not installed", tool)
			}
		}
	}
	cfg := Config{
		Scale: 1, Duration: time.Second, Rounds: 1, Clients: []int{1, 2}, RTTs: []time.Duration{time.Millisecond}, ProxyProcess: true,
		CopyRows: 500, CopyReps: 1, SetupReps: 1,
		Command: "go test ./internal/bench", Progress: testWriter{t},
		ServerEnv: []string{dbtest.DatabaseURLEnv}, // never DATABASE_URL's server unless opted in
	}
	rep, err := Run(t.Context(), cfg)
	require.NoError(t, err)

	var committed int64
	for _, v := range allVariants() {
		for _, n := range cfg.Clients {
			c, ok := rep.cell(v, n)
			require.True(t, ok, "%s at %d clients is in the report", v, n)
			require.Positive(t, c.Transactions, "%s at %d clients committed transactions", v, n)
			require.Zero(t, c.Failed, "%s at %d clients had no failed transactions", v, n)
			require.Positive(t, c.TPS, "%s at %d clients", v, n)
			require.Positive(t, c.P50, "%s at %d clients", v, n)
			require.GreaterOrEqual(t, c.P99, c.P50, "%s at %d clients: p99 ≥ p50", v, n)
			require.Positive(t, rep.vsPgbench(c).Ratio)
			require.Positive(t, rep.vsA(c).Ratio)
			require.Len(t, c.RoundTPS, cfg.Rounds, "%s at %d clients: one TPS per round", v, n)
			require.False(t, c.Proxied)
			if v != pgbenchSelect {
				committed += c.Transactions
			}
		}
	}
	require.Len(t, rep.cells, len(allVariants())*len(cfg.Clients))
	require.Len(t, rep.rttCells, len(allVariants())*len(cfg.RTTs))
	for _, v := range allVariants() {
		c, ok := rep.rttCell(v, time.Millisecond)
		require.True(t, ok, "%s through the proxy is in the report", v)
		require.True(t, c.Proxied)
		require.Equal(t, 1, c.Clients, "RTTClients defaults to 1")
		require.Positive(t, c.Transactions, "%s through the proxy committed transactions", v)
		require.GreaterOrEqual(t, c.MeasuredRTT, time.Millisecond, "%s: the proxy held every chunk for at least half the delay", v)
		require.GreaterOrEqual(t, c.P50, time.Millisecond, "%s: a transaction through the proxy takes at least one round trip", v)
		require.Positive(t, rep.vsPgbench(c).Ratio)
		if v != pgbenchSelect {
			committed += c.Transactions
		}
	}

	// Round trips are a property of the protocol, not of the machine: the
	// kit pipelines BEGIN with the first statement, and (d) sends the four
	// writes at once. Statement preparation adds a little per connection.
	// (e) defers the :exec writes: BEGIN and the first ride with the SELECT,
	// the other three with COMMIT.
	wantTrips := map[variant]float64{pgxBegin: 7, pgxBeginFunc: 7, uowTyped: 6, uowBatch: 3, uowWriteBehind: 2}
	for v, want := range wantTrips {
		for _, n := range cfg.Clients {
			c, _ := rep.cell(v, n)
			require.InDelta(t, want, c.RoundTrips, 0.5, "%s at %d clients: round trips per transaction", v, n)
			require.Positive(t, c.Allocs, "%s at %d clients: allocations counted", v, n)
		}
		c, _ := rep.rttCell(v, time.Millisecond)
		require.InDelta(t, want, c.RoundTrips, 0.5, "%s through the proxy: round trips per transaction", v)
	}

	cons := rep.consistency
	require.True(t, cons.ok(), "sum(abalance) = sum(tbalance) = sum(bbalance) = sum(history.delta): %+v", cons)
	require.GreaterOrEqual(t, cons.HistoryRows, committed, "every committed TPC-B transaction left a history row")

	if loadMeasured() {
		require.Len(t, rep.load, len(allLoadMethods()))
	} else {
		require.Empty(t, rep.load, "no bulk load without the example")
	}
	for _, l := range rep.load {
		require.Equal(t, cfg.CopyRows, l.Rows, "%s", l.Method)
		require.Len(t, l.Times, cfg.CopyReps, "%s", l.Method)
		require.Positive(t, l.Median, "%s", l.Method)
		require.Positive(t, rep.vsPsql(l).Ratio, "%s", l.Method)
	}
	s := rep.setup
	require.Positive(t, s.Clone)
	require.Positive(t, s.Fresh)
	require.Positive(t, s.MigrateUp)
	require.Positive(t, s.FirstClone)
	require.Greater(t, s.Fresh, s.MigrateUp, "a fresh database includes its migration")
	require.Positive(t, s.Migrations)

	targets := rep.targets()
	if loadMeasured() {
		require.Len(t, targets, 4*len(cfg.Clients)+2, "(e), (c) vs (a), (c) and (d) per client count, (e) at 1 ms, :copyfrom")
	} else {
		require.Len(t, targets, 4*len(cfg.Clients)+1, "(e), (c) vs (a), (c) and (d) per client count, (e) at 1 ms; no :copyfrom without the example")
	}
	for _, tg := range targets {
		require.False(t, math.IsNaN(tg.Got.Ratio) || tg.Got.Ratio <= 0, "%s: %v", tg.Name, tg.Got)
		require.NotEmpty(t, tg.verdict())
	}

	require.NotEmpty(t, rep.env.Server)
	if envURL := os.Getenv(dbtest.DatabaseURLEnv); envURL != "" {
		// A server the developer opted in for tests: the report says what it runs with.
		require.Equal(t, "env", rep.env.ServerSource, "localpg uses the server of "+dbtest.DatabaseURLEnv)
		conn, err := pgx.Connect(t.Context(), envURL)
		require.NoError(t, err)
		defer conn.Close(context.WithoutCancel(t.Context()))
		var fsync string
		require.NoError(t, conn.QueryRow(t.Context(), "SHOW fsync").Scan(&fsync))
		require.Equal(t, fsync, rep.env.setting("fsync"), "the report records the server's fsync")
	} else {
		require.NotEqual(t, "env", rep.env.ServerSource)
		require.Equal(t, "off", rep.env.setting("fsync"), "localpg's server runs without fsync; the report says so")
	}

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	var md bytes.Buffer
	charts := Charts{TPS: "chart.svg", RTT: "rtt.svg"}
	require.NoError(t, rep.writeMarkdown(&md, charts))
	for _, v := range allVariants() {
		require.Contains(t, text.String(), string(v))
		require.Contains(t, md.String(), "| "+string(v)+" |")
		require.Contains(t, md.String(), "| "+string(v)+" | 1 ms |", "%s through the proxy", v)
	}
	require.Contains(t, md.String(), "![TPC-B transactions per second against clients, per variant](chart.svg)")
	require.Contains(t, md.String(), "![TPC-B transactions per second against added round-trip time, per variant](rtt.svg)")
	require.Contains(t, md.String(), "go test ./internal/bench")

	var svg bytes.Buffer
	require.NoError(t, rep.WriteSVG(&svg))
	requireXML(t, svg.Bytes())
	require.Equal(t, len(allVariants())-1, strings.Count(svg.String(), "<polyline"), "one line per TPC-B variant; select-only is left out")
	svg.Reset()
	require.NoError(t, rep.WriteRTTSVG(&svg))
	requireXML(t, svg.Bytes())
	require.Equal(t, len(allVariants()), strings.Count(svg.String(), "<polyline"), "one line per variant")

	// A new run replaces only the generated part of the document.
	doc := []byte("# Benchmarks\n\nintro kept\n\n<!-- bench:results:begin (generated by go run ./cmd/bench; edits inside are overwritten) -->\nold numbers\n<!-- bench:results:end -->\n\n## Analysis\n\nanalysis kept\n")
	updated, err := rep.UpdateMarkdown(doc, charts)
	require.NoError(t, err)
	require.Contains(t, string(updated), "intro kept")
	require.Contains(t, string(updated), "analysis kept")
	require.NotContains(t, string(updated), "old numbers")
	require.Contains(t, string(updated), "| "+string(uowBatch)+" |")
}

func requireXML(t *testing.T, data []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err, "the chart is well-formed XML")
	}
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
