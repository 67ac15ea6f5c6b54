package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/bench/tpcb/tpcbgen"
)

const pgbenchOutput = `pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 10
query mode: prepared
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 7023
number of failed transactions: 0 (0.000%)
latency average = 1.709 ms
initial connection time = 12.345 ms
tps = 2340.686652 (without initial connection time)
`

func TestParsePgbenchReadsCountAndTPS(t *testing.T) {
	t.Parallel()
	res, err := parsePgbench(pgbenchOutput)
	require.NoError(t, err)
	require.Equal(t, int64(7023), res.n)
	require.Zero(t, res.failed)
	require.InDelta(t, 7023/2340.686652, res.elapsed.Seconds(), 1e-6, "elapsed is count/tps")

	_, err = parsePgbench("pgbench: error: connection refused\n")
	require.ErrorContains(t, err, "no tps or transaction count")
}

func TestReadPgbenchLogSkipsFailedTransactions(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "tx.123")
	require.NoError(t, os.WriteFile(name, []byte("0 1 8592 0 1795397165 692379\n0 2 1529 0 1795397165 693930\n1 1 failed 0 1795397165 694401\n"), 0o600))
	lats, err := readPgbenchLog(name)
	require.NoError(t, err)
	require.Equal(t, []time.Duration{8592 * time.Microsecond, 1529 * time.Microsecond}, lats)
}

func TestPercentileIsNearestRank(t *testing.T) {
	t.Parallel()
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	require.Equal(t, time.Duration(50), percentile(s, 50))
	require.Equal(t, time.Duration(99), percentile(s, 99))
	require.Equal(t, time.Duration(100), percentile(s, 100))
	require.Equal(t, time.Duration(7), percentile([]time.Duration{7}, 99))
	require.Zero(t, percentile(nil, 50))
	require.Equal(t, time.Duration(2), median([]time.Duration{3, 1, 2, 4}), "the lower middle")
}

func TestSliceIsWholeSecondsPerRound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		duration time.Duration
		rounds   int
		want     time.Duration
	}{
		{8 * time.Second, 4, 2 * time.Second},
		{10 * time.Second, 4, 3 * time.Second}, // 2.5 s rounds to 3
		{300 * time.Millisecond, 1, time.Second},
		{time.Second, 3, time.Second},
	} {
		got := Config{Duration: tc.duration, Rounds: tc.rounds}.slice()
		require.Equal(t, tc.want, got, "%v over %d rounds", tc.duration, tc.rounds)
	}
}

func TestConfigReportsEveryBadValue(t *testing.T) {
	t.Parallel()
	_, err := Config{Scale: -1, Rounds: -2, Clients: []int{4, 0, 4}, CopyRows: -1,
		RTTs: []time.Duration{time.Millisecond, -time.Millisecond, time.Millisecond}, RTTClients: -1}.withDefaults()
	require.Error(t, err)
	for _, want := range []string{"scale -1", "rounds -2", "clients 0", "clients 4: listed twice", "copy rows -1",
		"rtt -1ms: want 0 or more", "rtt 1ms: listed twice", "rtt clients -1"} {
		require.ErrorContains(t, err, want)
	}
	cfg, err := Config{}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, Defaults().Clients, cfg.Clients)
	require.Empty(t, cfg.RTTs, "no delayed cells unless asked")
	require.Equal(t, 1, cfg.RTTClients)
}

func TestSpreadIsTheWholeRatioAndTheRangeOfTheRounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                  string
		tps, base             float64
		rounds, baseRounds    []float64
		want                  spread
		wantString, wantTimes string
	}{
		{
			name: "per-round ratios give the range, the whole cells the ratio",
			tps:  1200, base: 1000, rounds: []float64{1100, 1300, 1200}, baseRounds: []float64{1000, 1000, 1200},
			want:       spread{Ratio: 1.2, Min: 1, Max: 1.3, Rounds: 3},
			wantString: "1.20 (1.00–1.30)", wantTimes: "1.20× (1.00–1.30)",
		},
		{
			name: "a round against the baseline's same round, not its best",
			tps:  150, base: 150, rounds: []float64{100, 200}, baseRounds: []float64{200, 100},
			want:       spread{Ratio: 1, Min: 0.5, Max: 2, Rounds: 2},
			wantString: "1.00 (0.50–2.00)", wantTimes: "1.00× (0.50–2.00)",
		},
		{
			name: "one round has no range",
			tps:  300, base: 200, rounds: []float64{300}, baseRounds: []float64{200},
			want:       spread{Ratio: 1.5, Min: 1.5, Max: 1.5, Rounds: 1},
			wantString: "1.50", wantTimes: "1.50×",
		},
		{
			name: "a round whose baseline did nothing is left out",
			tps:  100, base: 50, rounds: []float64{100, 100}, baseRounds: []float64{0, 50},
			want:       spread{Ratio: 2, Min: 2, Max: 2, Rounds: 1},
			wantString: "2.00", wantTimes: "2.00×",
		},
		{
			name: "no rounds: the range is the ratio",
			tps:  100, base: 400,
			want:       spread{Ratio: 0.25, Min: 0.25, Max: 0.25},
			wantString: "0.25", wantTimes: "0.25×",
		},
		{
			name: "no baseline: zero",
			tps:  100, base: 0,
			want:       spread{},
			wantString: "0.00", wantTimes: "0.00×",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := newSpread(tc.tps, tc.base, tc.rounds, tc.baseRounds)
			require.InDelta(t, tc.want.Ratio, got.Ratio, 1e-12)
			require.InDelta(t, tc.want.Min, got.Min, 1e-12)
			require.InDelta(t, tc.want.Max, got.Max, 1e-12)
			require.Equal(t, tc.want.Rounds, got.Rounds)
			require.Equal(t, tc.wantString, got.String())
			require.Equal(t, tc.wantTimes, got.times())
		})
	}
}

func TestReportComparesCellsOfTheSameConditionRoundByRound(t *testing.T) {
	t.Parallel()
	mk := func(v variant, clients int, proxied bool, rtt time.Duration, rounds ...sliceResult) cell {
		c := cell{Variant: v, Clients: clients, Proxied: proxied, RTT: rtt}
		for _, r := range rounds {
			c.add(r)
		}
		c.finish()
		return c
	}
	sec := func(n int64) sliceResult { return sliceResult{n: n, elapsed: time.Second} }
	rep := &Report{
		config: Config{Clients: []int{1}, RTTs: []time.Duration{time.Millisecond}, RTTClients: 1},
		cells: []cell{
			mk(pgbenchTPCB, 1, false, 0, sec(1000), sec(2000)),
			mk(uowWriteBehind, 1, false, 0, sec(1500), sec(2400)),
		},
		rttCells: []cell{
			mk(pgbenchTPCB, 1, true, time.Millisecond, sec(100), sec(100)),
			mk(uowWriteBehind, 1, true, time.Millisecond, sec(310), sec(320)),
		},
	}
	direct, _ := rep.cell(uowWriteBehind, 1)
	require.Equal(t, []float64{1500, 2400}, direct.RoundTPS)
	got := rep.vsPgbench(direct)
	require.InDelta(t, 3900.0/3000, got.Ratio, 1e-12, "summed transactions over summed time")
	require.InDelta(t, 1.2, got.Min, 1e-12, "round 2: 2400 / 2000")
	require.InDelta(t, 1.5, got.Max, 1e-12, "round 1: 1500 / 1000")

	delayed, _ := rep.rttCell(uowWriteBehind, time.Millisecond)
	got = rep.vsPgbench(delayed)
	require.InDelta(t, 3.15, got.Ratio, 1e-12, "against pgbench through the same proxy, not the direct one")
	require.InDelta(t, 3.1, got.Min, 1e-12)
	require.InDelta(t, 3.2, got.Max, 1e-12)
	require.Equal(t, spread{}, rep.vsA(delayed), "(a) was not measured")

	var verdicts []string
	for _, tg := range rep.targets() {
		verdicts = append(verdicts, tg.where()+": "+tg.verdict())
	}
	require.Equal(t, []string{
		"1 client: met, not in every round", // 1.30 against 1.3, round 2 at 1.2
		"1 client, 1ms RTT: met",            // 3.1–3.2 against 3
		"1 client: MISSED",                  // (c) vs (a): neither measured
		"1 client: MISSED",                  // (c) vs pgbench
		"1 client: MISSED",                  // (d) vs pgbench
	}, verdicts)
}

func TestTargetVerdictSaysWhetherTheRoundsAgree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got  spread
		want string
	}{
		{spread{Ratio: 1.4, Min: 1.35, Max: 1.5, Rounds: 4}, "met"},
		{spread{Ratio: 1.32, Min: 1.2, Max: 1.5, Rounds: 4}, "met, not in every round"},
		{spread{Ratio: 1.25, Min: 1.1, Max: 1.31, Rounds: 4}, "MISSED, met in some rounds"},
		{spread{Ratio: 1.1, Min: 1.0, Max: 1.2, Rounds: 4}, "MISSED"},
	} {
		require.Equal(t, tc.want, target{Want: 1.3, Got: tc.got}.verdict(), "%v against 1.3", tc.got)
	}
}

func TestClientConnViaProxyTakesTheHostOutOfTheConnectionString(t *testing.T) {
	t.Parallel()
	proxy := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40123}
	c := newClientConn("postgres://app:s3cr%40t@db.example:5433/shop?sslmode=disable&port=5434&host=/tmp").via(proxy)
	require.Equal(t, []string{"-h", "127.0.0.1", "-p", "40123"}, c.flags, "libpq's -h and -p name the proxy")
	require.Equal(t, "postgres://app@/shop?sslmode=disable", c.arg, "no host or port left to win over the flags")
	require.Equal(t, []string{"PGPASSWORD=s3cr@t"}, c.env)

	c = newClientConn("host=/tmp port=5432 dbname=x").via(proxy)
	require.Equal(t, "host=/tmp port=5432 dbname=x host=127.0.0.1 hostaddr=127.0.0.1 port=40123", c.arg, "a later keyword wins")
}

func TestClientConnKeepsThePasswordOutOfTheArguments(t *testing.T) {
	t.Parallel()
	c := newClientConn("postgres://app:s3cr%40t@db.example:5433/shop?sslmode=require")
	require.NotContains(t, c.arg, "s3cr")
	require.Equal(t, "postgres://app@db.example:5433/shop?sslmode=require", c.arg)
	require.Equal(t, []string{"PGPASSWORD=s3cr@t"}, c.env)

	c = newClientConn("host=/tmp dbname=x")
	require.Equal(t, "host=/tmp dbname=x", c.arg)
	require.Empty(t, c.env)

	c = newClientConn("host=/tmp password='s3 cr\\'t' dbname=x")
	require.Equal(t, "host=/tmp dbname=x", c.arg, "a keyword/value string's password travels in PGPASSWORD too")
	require.Equal(t, []string{"PGPASSWORD=s3 cr't"}, c.env)
}

func TestExecQueueQueuesTypedWritesAndRefusesReads(t *testing.T) {
	t.Parallel()
	var eq execQueue
	q := tpcbgen.New(&eq)
	ctx := context.Background()
	require.NoError(t, q.AccountUpdate(ctx, tpcbgen.AccountUpdateParams{Delta: 5, Aid: 7}))
	require.NoError(t, q.BranchUpdate(ctx, tpcbgen.BranchUpdateParams{Delta: 5, Bid: 1}))
	require.Equal(t, 2, eq.b.Len())
	require.Contains(t, eq.b.QueuedQueries[0].SQL, "UPDATE pgbench_accounts")
	require.Equal(t, []any{int32(5), int32(7)}, eq.b.QueuedQueries[0].Arguments)
	_, err := q.AccountBalance(ctx, 7)
	require.ErrorIs(t, err, errNotQueueable)
}

// tpcbSchema is internal/bench/tpcb/schema.sql as a goose migration, for dbtest.
func tpcbSchema(t testing.TB) fstest.MapFS {
	t.Helper()
	schema, err := os.ReadFile("tpcb/schema.sql")
	require.NoError(t, err)
	return fstest.MapFS{"00001_tpcb.sql": {Data: []byte("-- +goose Up\n" + string(schema))}}
}

// TestSchemaMatchesPgbench checks that the schema sqlc types the queries
// with is the one pgbench -i creates: same columns, types, nullability,
// primary keys and storage options.
func TestSchemaMatchesPgbench(t *testing.T) {
	t.Parallel()
	pgbench, err := findTool("", "pgbench")
	if err != nil {
		t.Skip(err)
	}
	fromSQL := dbtest.New(t, dbtest.WithMigrations(tpcbSchema(t)), dbtest.WithMaxConns(1))
	url := dbtest.NewURL(t, dbtest.WithoutMigrations())
	out, err := newClientConn(url).run(t.Context(), pgbench, "-i", "-q", "-s", "1")
	require.NoError(t, err, out)
	fromPgbench, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = fromPgbench.Close(context.WithoutCancel(t.Context())) })

	const catalog = `
		SELECT c.relname, coalesce(array_to_string(c.reloptions, ','), ''),
		       a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
		       coalesce((SELECT string_agg(pg_get_constraintdef(k.oid), ',') FROM pg_constraint k
		                 WHERE k.conrelid = c.oid AND k.contype = 'p'), '')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE c.relkind = 'r' AND c.relname LIKE 'pgbench\_%'
		ORDER BY c.relname, a.attnum`
	read := func(q interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}) []string {
		rows, err := q.Query(t.Context(), catalog)
		require.NoError(t, err)
		var out []string
		for rows.Next() {
			vals, err := rows.Values()
			require.NoError(t, err)
			out = append(out, fmt.Sprintf("%v", vals))
		}
		require.NoError(t, rows.Err())
		return out
	}
	want := read(fromPgbench)
	require.Len(t, want, 17, "pgbench's four tables have 17 columns")
	require.Equal(t, want, read(fromSQL))
}

// BenchmarkTransaction runs one Go variant's transaction at a time on one
// connection, for profiling the client side: -benchmem counts allocations,
// "trips/op" the round trips, -cpuprofile and -memprofile say where they go.
//
//	go test ./internal/bench -run '^$' -bench Transaction -benchmem
func BenchmarkTransaction(b *testing.B) {
	const scale = 1
	names := map[variant]string{pgxBegin: "a-pgx-begin", pgxBeginFunc: "b-pgx-beginfunc", uowTyped: "c-uow-typed", uowBatch: "d-uow-batch", uowWriteBehind: "e-uow-writebehind"}
	for _, v := range []variant{pgxBegin, pgxBeginFunc, uowTyped, uowBatch, uowWriteBehind} {
		b.Run(names[v], func(b *testing.B) {
			url := dbtest.NewURL(b, dbtest.WithMigrations(tpcbSchema(b)))
			load(b, url, scale)
			pcfg, err := pgxpool.ParseConfig(url)
			require.NoError(b, err)
			pcfg.MaxConns = 1
			var writes atomic.Int64
			pcfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				return countingConn{Conn: c, writes: &writes}, err
			}
			pool, err := pgxpool.NewWithConfig(b.Context(), pcfg)
			require.NoError(b, err)
			b.Cleanup(pool.Close)
			run, err := goTransaction(v, pool)
			require.NoError(b, err)
			gen := newParamGen(scale, 1)
			require.NoError(b, run(b.Context(), gen.next())) // prepare the statements
			w0 := writes.Load()
			for b.Loop() {
				if err := run(b.Context(), gen.next()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(writes.Load()-w0)/float64(b.N), "trips/op")
		})
	}
}

// load fills the pgbench tables at scale as pgbench -i does, in SQL.
func load(b *testing.B, url string, scale int) {
	b.Helper()
	conn, err := pgx.Connect(b.Context(), url)
	require.NoError(b, err)
	defer func() { _ = conn.Close(context.WithoutCancel(b.Context())) }()
	_, err = conn.Exec(b.Context(), fmt.Sprintf(`
		INSERT INTO pgbench_branches (bid, bbalance) SELECT i, 0 FROM generate_series(1, %[1]d) i;
		INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT i, (i - 1) / 10 + 1, 0 FROM generate_series(1, 10 * %[1]d) i;
		INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT i, (i - 1) / 100000 + 1, 0, '' FROM generate_series(1, 100000 * %[1]d) i`, scale))
	require.NoError(b, err)
	_, err = conn.Exec(b.Context(), "VACUUM ANALYZE")
	require.NoError(b, err)
}
