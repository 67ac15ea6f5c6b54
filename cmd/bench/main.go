// Command bench runs the side-by-side benchmarks of internal/bench (the kit
// vs hand-written pgx vs pgbench) against one PostgreSQL server and prints
// the results; with -out it also writes them into a Markdown document and an
// SVG chart beside it.
//
//	go run ./cmd/bench -scale 10 -duration 8s -rounds 4 -clients 1,4,16 -rtt 0,1ms -out docs/BENCHMARKS.md
//
// It uses the server in DATABASE_URL when set, else starts one from the local
// PostgreSQL binaries (see package localpg); pgbench and psql must be
// installed. Exit code 0 on success, 1 on failure, 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cortexerp/datalayer/internal/bench"
)

// The charts' file names, written beside the -out document.
const (
	chartName    = "bench-tps.svg"
	rttChartName = "bench-rtt.svg"
)

func main() {
	bench.ProxyMain() // -rtt's proxies are this program started again
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	d := bench.Defaults()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	scale := fs.Int("scale", d.Scale, "pgbench scale factor (100 000 accounts each)")
	duration := fs.Duration("duration", d.Duration, "measured time of each TPC-B cell, split over the rounds (whole seconds per round)")
	rounds := fs.Int("rounds", d.Rounds, "rounds: every variant runs at every client count once per round")
	clients := fs.String("clients", joinInts(d.Clients), "comma-separated client counts")
	rtts := fs.String("rtt", "", "comma-separated round-trip delays (e.g. 0,0.5ms,1ms,2ms) every TPC-B variant also runs with, through a delaying proxy on loopback; empty: none")
	rttClients := fs.Int("rtt-clients", 1, "client count of the -rtt cells")
	copyRows := fs.Int("copy-rows", d.CopyRows, "rows per bulk-load run")
	copyReps := fs.Int("copy-reps", d.CopyReps, "bulk-load runs per method (median)")
	setupReps := fs.Int("setup-reps", d.SetupReps, "databases cloned and migrated (median)")
	out := fs.String("out", "", "Markdown file to write the results into (between its result markers), with "+chartName+" (and with -rtt "+rttChartName+") beside it; empty: print only")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the Go variants' client side) to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cl, err := parseInts(*clients)
	var rt []time.Duration
	if err == nil {
		rt, err = parseDurations(*rtts)
	}
	if err == nil && *rttClients < 1 {
		err = fmt.Errorf("-rtt-clients %d: want at least 1", *rttClients)
	}
	if err != nil || fs.NArg() > 0 {
		if err == nil {
			err = fmt.Errorf("unexpected arguments %q", fs.Args())
		}
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		fs.Usage()
		return 2
	}
	cfg := bench.Config{
		Scale: *scale, Duration: *duration, Rounds: *rounds, Clients: cl, RTTs: rt, RTTClients: *rttClients, ProxyProcess: true,
		CopyRows: *copyRows, CopyReps: *copyReps, SetupReps: *setupReps,
		Command:  strings.TrimSpace("go run ./cmd/bench " + strings.Join(args, " ")),
		Progress: os.Stderr,
	}
	if *quiet {
		cfg.Progress = nil
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "bench: start cpu profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	if err := rep.WriteText(os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	if *out != "" {
		if err := write(rep, *out); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s and its charts beside it\n", *out)
	}
	return 0
}

// write updates the document at path and writes the chart beside it.
func write(rep *bench.Report, path string) error {
	doc, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	charts := bench.Charts{TPS: chartName}
	if rep.MeasuredRTT() {
		charts.RTT = rttChartName
	}
	doc, err = rep.UpdateMarkdown(doc, charts)
	if err != nil {
		return fmt.Errorf("render markdown: %w", err)
	}
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := writeChart(filepath.Join(dir, chartName), rep.WriteSVG); err != nil {
		return err
	}
	if charts.RTT != "" {
		return writeChart(filepath.Join(dir, rttChartName), rep.WriteRTTSVG)
	}
	return nil
}

// writeChart writes the file at path with draw.
func writeChart(path string, draw func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	if err := draw(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write chart %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-clients %q: want comma-separated numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseDurations reads a comma-separated list of durations; "0" is one,
// an empty string none.
func parseDurations(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-rtt %q: want comma-separated durations such as 0,0.5ms,1ms", s)
		}
		out = append(out, d)
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
