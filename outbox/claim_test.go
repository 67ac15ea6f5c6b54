package outbox

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
)

// idOrderClaimSQL is the claim before the skip scan, kept as the baseline
// of TestAClaimsCostDoesNotGrowWithTheQueueBehindABlockedKey and
// BenchmarkClaim: pending events in id order, each tested for an earlier
// pending event of its key, so it walks the whole queue of a blocked key.
const idOrderClaimSQL = `SELECT id, topic, key, payload, headers, created_at, attempts
FROM outbox_events e
WHERE state = 'pending' AND next_attempt_at <= now()
  AND (key = '' OR NOT EXISTS (
        SELECT 1 FROM outbox_events p
        WHERE p.state = 'pending' AND p.key = e.key AND p.id < e.id))
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED`

// fill writes deep pending events of key "stuck", whose head waits for a
// retry an hour away (due now when headDue), then two events for each of
// small keys; vacuumed and analysed, as a database that has been running
// would be.
func fill(t testing.TB, pool *pgxpool.Pool, deep, small int, headDue bool) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	_, err := pool.Exec(ctx, `INSERT INTO outbox_events (topic, key, payload) SELECT 't', 'stuck', 'x' FROM generate_series(1, $1)`, deep)
	require.NoError(t, err)
	retryIn := time.Hour
	if headDue {
		retryIn = 0
	}
	_, err = pool.Exec(ctx, `UPDATE outbox_events SET attempts = 1, next_attempt_at = now() + $1::interval
		WHERE id = (SELECT min(id) FROM outbox_events WHERE key = 'stuck')`, retryIn)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO outbox_events (topic, key, payload)
		SELECT 't', 'k' || (g % $1), 'x' FROM generate_series(1, 2 * $1) g`, small)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "VACUUM ANALYZE outbox_events")
	require.NoError(t, err)
}

// claimBuffers runs claim under EXPLAIN (ANALYZE, BUFFERS) in a transaction
// it rolls back, and returns the shared buffers it touched and the rows it
// claimed.
func claimBuffers(t *testing.T, pool *pgxpool.Pool, claim string, args ...any) (buffers, claimed int) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	var out []byte
	require.NoError(t, tx.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+claim, args...).Scan(&out))
	var plans []struct {
		Plan struct {
			Hit  int `json:"Shared Hit Blocks"`
			Read int `json:"Shared Read Blocks"`
			Rows int `json:"Actual Rows"`
		}
	}
	require.NoError(t, json.Unmarshal(out, &plans))
	require.Len(t, plans, 1)
	return plans[0].Plan.Hit + plans[0].Plan.Read, plans[0].Plan.Rows
}

func TestAClaimsCostDoesNotGrowWithTheQueueBehindABlockedKey(t *testing.T) {
	t.Parallel()
	const small = 50
	type cost struct{ idOrder, skipScan int }
	measure := func(deep int, headInFlight bool) cost {
		pool := dbtest.New(t, dbtest.WithMigrations(Migrations()))
		fill(t, pool, deep, small, headInFlight)
		ctx := t.Context()
		if headInFlight {
			// The head is due but another relay is delivering it: its row
			// is locked until that relay commits.
			holder, err := pool.Begin(ctx)
			require.NoError(t, err)
			t.Cleanup(func() { _ = holder.Rollback(context.WithoutCancel(ctx)) })
			_, err = holder.Exec(ctx, "SELECT FROM outbox_events WHERE id = (SELECT min(id) FROM outbox_events WHERE key = 'stuck') FOR UPDATE")
			require.NoError(t, err)
		}
		var c cost
		var n int
		c.idOrder, n = claimBuffers(t, pool, idOrderClaimSQL, 16)
		require.Equal(t, 16, n)
		for _, from := range []string{"", "k9", "stuck"} { // before, just before and at the blocked key
			b, n := claimBuffers(t, pool, claimKeyedFirstSQL, 16, from)
			require.Equal(t, 16, n, "walk from %q", from)
			c.skipScan = max(c.skipScan, b)
		}

		// The relay delivers every small key's events, in order, and
		// none of the blocked key's.
		rec := &keyOrder{last: map[string]int64{}}
		r, err := NewRelay(pool, rec, WithBatchSize(7))
		require.NoError(t, err)
		got, err := r.Drain(ctx)
		require.NoError(t, err)
		require.Equal(t, 2*small, got)
		require.Empty(t, rec.outOfOrder)
		var pending, delivered int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'pending' AND key = 'stuck'),
			count(*) FILTER (WHERE state = 'delivered' AND key <> 'stuck' AND attempts = 1) FROM outbox_events`).Scan(&pending, &delivered))
		require.Equal(t, deep, pending)
		require.Equal(t, 2*small, delivered)
		return c
	}
	for _, inFlight := range []bool{false, true} {
		shallow, deep := measure(1_000, inFlight), measure(10_000, inFlight)
		t.Logf("head in flight %v: buffers id order %d → %d, skip scan %d → %d", inFlight,
			shallow.idOrder, deep.idOrder, shallow.skipScan, deep.skipScan)
		require.Greater(t, deep.idOrder, 5*shallow.idOrder, "the baseline walks the blocked key's queue")
		require.Less(t, deep.skipScan, shallow.skipScan+shallow.skipScan/2, "the skip scan does not")
	}
}

// keyOrder is a sink that records events delivered out of key order.
type keyOrder struct {
	last       map[string]int64
	outOfOrder []int64
}

func (s *keyOrder) Deliver(_ context.Context, e Event) error {
	if e.ID <= s.last[e.Key] {
		s.outOfOrder = append(s.outOfOrder, e.ID)
	}
	s.last[e.Key] = e.ID
	return nil
}

// BenchmarkClaim runs one claim of 16 events (in a transaction rolled back,
// so every iteration claims from the same state) with the id-order baseline
// and with the skip scan, side by side, alternating which goes first:
// "blocked" has 100 000 pending events behind a key whose head waits for a
// retry and 1000 small keys of 2 events; "short" has 10 000 keys of 3
// events each. It reports each side's median and the ratio of the medians
// (baseline / skip scan) per fifth of the run, median and range:
//
//	go test ./outbox -run '^$' -bench Claim -benchtime 20x -count 1
func BenchmarkClaim(b *testing.B) {
	for _, tc := range []struct {
		name  string
		setup func(testing.TB, *pgxpool.Pool)
	}{
		{"blocked", func(t testing.TB, pool *pgxpool.Pool) { fill(t, pool, 100_000, 1000, false) }},
		{"short", func(t testing.TB, pool *pgxpool.Pool) {
			ctx := context.WithoutCancel(t.Context())
			_, err := pool.Exec(ctx, `INSERT INTO outbox_events (topic, key, payload) SELECT 't', 'k' || (g % 10000), 'x' FROM generate_series(1, 30000) g`)
			require.NoError(t, err)
			_, err = pool.Exec(ctx, "VACUUM ANALYZE outbox_events")
			require.NoError(t, err)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			pool := dbtest.New(b, dbtest.WithMigrations(Migrations()))
			tc.setup(b, pool)
			ctx := context.Background()
			one := func(claim string, args ...any) time.Duration {
				start := time.Now()
				tx, err := pool.Begin(ctx)
				require.NoError(b, err)
				rows, err := tx.Query(ctx, claim, args...)
				require.NoError(b, err)
				n := 0
				for rows.Next() {
					n++
				}
				require.NoError(b, rows.Err())
				require.Equal(b, 16, n)
				require.NoError(b, tx.Rollback(ctx))
				return time.Since(start)
			}
			// Warm both (and let pgx prepare them) before measuring.
			one(idOrderClaimSQL, 16)
			one(claimKeyedFirstSQL, 16, "")
			var base, skip []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					base = append(base, one(idOrderClaimSQL, 16))
					skip = append(skip, one(claimKeyedFirstSQL, 16, ""))
				} else {
					skip = append(skip, one(claimKeyedFirstSQL, 16, ""))
					base = append(base, one(idOrderClaimSQL, 16))
				}
			}
			b.StopTimer()
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(median(base)), "idorder-ms")
			b.ReportMetric(ms(median(skip)), "skipscan-ms")
			b.ReportMetric(0, "ns/op")
			if b.N >= 5 {
				var ratios []float64
				for f := range 5 {
					lo, hi := f*b.N/5, (f+1)*b.N/5
					ratios = append(ratios, float64(median(base[lo:hi]))/float64(median(skip[lo:hi])))
				}
				slices.Sort(ratios)
				b.Logf("id order / skip scan, per fifth: median %.2fx, range %.2fx..%.2fx (%d claims each)",
					ratios[2], ratios[0], ratios[4], b.N)
			}
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2]
}
