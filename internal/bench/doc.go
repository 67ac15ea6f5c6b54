// Package bench measures the kit side by side with hand-written pgx and with
// pgbench, against one PostgreSQL server in one run, and reports ratios.
//
// Run starts a server through localpg (DATABASE_URL when set, else local
// binaries), creates its own databases on it and runs:
//
//   - TPC-B: pgbench's tpcb-like transaction (pgbench -M prepared), pgbench
//     select-only (-S), and the same transaction from Go as (a) hand-written
//     pgx Begin/Exec/Commit, (b) pgx.BeginFunc, (c) sqlc typed queries
//     (package tpcb/tpcbgen) in uow.Do, (d) uow.Do with the four writes
//     queued into one batch, then the SELECT, and (e) (c)'s code in a unit of
//     work with uow.WithWriteBehind. Every variant runs at every client count
//     in every round, for a short slice each, in an order that rotates from
//     round to round, so that drift (autovacuum, checkpoints, table growth, a
//     noisy neighbour) hits all of them alike; a cell's numbers are summed
//     over the rounds, and every ratio comes with the range of the same ratio
//     round by round (a spread), the noise it has to beat.
//   - TPC-B with network latency (Config.RTTs): every variant again, its
//     connections through a TCP proxy on loopback that holds each chunk for
//     half the round-trip delay each way (delay, not a bandwidth cap), in the
//     same rounds. The proxy runs in a child process when Config.ProxyProcess
//     is set (the program calls ProxyMain first).
//   - Bulk load: the same rows through dbgen's :copyfrom ProductImport, through
//     per-row ProductCreate inserts in one unit of work, and through
//     psql \copy from a CSV file, interleaved, median of the repetitions.
//   - Database set-up: a dbtest-style database cloned from a migrated template
//     (pgtestdb, as dbtest.New does when no clone made ahead is ready)
//     against a fresh database migrated from
//     scratch, and migrate up of the whole schema, median of the repetitions.
//
// The Report prints as a text table (Report.WriteText), as the Markdown of
// docs/BENCHMARKS.md (Report.UpdateMarkdown) and as SVG charts
// of TPS against clients (Report.WriteSVG) and against the added round-trip
// time (Report.WriteRTTSVG). Targets are reported, never
// asserted: a benchmark that fails on a wall-clock number only measures the
// machine it ran on.
package bench
