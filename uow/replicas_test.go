//go:build unix

package uow_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/localpg"
	"github.com/cortexerp/datalayer/uow"
)

// replicated is a primary started from binaries with streaming standbys, and
// pools on each, shared by the subtests of TestReplicas.
type replicated struct {
	srv                *localpg.Server
	primary            *pgxpool.Pool
	fast, slow, spare  *localpg.Standby
	fastPool, slowPool *pgxpool.Pool
	slowDelay          time.Duration
}

func startReplicated(t *testing.T, ctx context.Context) *replicated {
	t.Helper()
	srv, err := localpg.Start(ctx, localpg.WithSources(localpg.SourceBinaries))
	if errors.Is(err, localpg.ErrNoServer) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true: this test must run in CI", err)
		}
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Stop(context.Background())) })
	r := &replicated{srv: srv, slowDelay: 2500 * time.Millisecond}
	r.primary = newPool(t, ctx, srv.URL())
	_, err = r.primary.Exec(ctx, schema)
	require.NoError(t, err)
	r.fast, err = srv.StartStandby(ctx)
	require.NoError(t, err)
	r.slow, err = srv.StartStandby(ctx, localpg.ApplyDelay(r.slowDelay))
	require.NoError(t, err)
	r.spare, err = srv.StartStandby(ctx)
	require.NoError(t, err)
	r.fastPool = newPool(t, ctx, r.fast.URL())
	r.slowPool = newPool(t, ctx, r.slow.URL())
	return r
}

func newPool(t *testing.T, ctx context.Context, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func newReplicaSet(t *testing.T, primary *pgxpool.Pool, replicas []*pgxpool.Pool, opts ...uow.ReplicaOption) *uow.ReplicaSet {
	t.Helper()
	rs, err := uow.NewReplicaSet(primary, replicas, opts...)
	require.NoError(t, err)
	t.Cleanup(rs.Close)
	require.NoError(t, rs.Probe(t.Context()))
	return rs
}

// where reports whether a unit of work ran on a standby, and what it read.
type where struct {
	onStandby bool
	notes     []string
}

func readItems(ctx context.Context, u *uow.UnitOfWork[*store], opts ...uow.TxOption) (where, error) {
	return uow.DoResult(ctx, u, func(ctx context.Context, q *store) (where, error) {
		var w where
		err := q.db.QueryRow(ctx, "SELECT pg_is_in_recovery(), coalesce(array_agg(note ORDER BY id), '{}') FROM items").Scan(&w.onStandby, &w.notes)
		return w, err
	}, append(opts, uow.ReadOnly())...)
}

// waitFor polls cond until it holds, failing the test past a deadline.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waited 30s for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestReplicas runs units of work against a real primary and its streaming
// standbys (started once: a standby costs seconds). The subtests share the
// servers and run in order.
func TestReplicas(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	r := startReplicated(t, ctx)
	next := 0
	write := func(t *testing.T, u *uow.UnitOfWork[*store], note string, opts ...uow.TxOption) {
		t.Helper()
		next++
		require.NoError(t, u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, next, note) }, opts...))
	}

	t.Run("reads land on a replica, writes never do", func(t *testing.T) {
		// The wait is long: localpg's primary commits asynchronously, so a
		// commit reaches a standby only once the WAL writer flushes it (up to
		// 3 × wal_writer_delay, 600ms, later on a loaded machine).
		rs := newReplicaSet(t, r.primary, []*pgxpool.Pool{r.fastPool},
			uow.ReplicaProbeInterval(20*time.Millisecond), uow.ReplicaTokenWait(30*time.Second))
		u := uow.New(r.primary, newStore, uow.WithReplicaSet(rs))
		var tok uow.Token
		write(t, u, "first", uow.CaptureToken(&tok))
		w, err := readItems(ctx, u, uow.AfterToken(tok))
		require.NoError(t, err)
		require.Equal(t, where{onStandby: true, notes: []string{"first"}}, w)

		var onStandby bool
		require.NoError(t, u.Do(ctx, func(ctx context.Context, q *store) error {
			return q.db.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&onStandby)
		}))
		require.False(t, onStandby, "a read-write unit of work runs on the primary")

		runs := 0
		err = u.Do(ctx, func(ctx context.Context, q *store) error { runs++; return q.put(ctx, 100, "refused") }, uow.ReadOnly())
		require.ErrorContains(t, err, "uow: write in a read-only unit of work (the ReadOnly option, which WithReplicas and WithReplicaSet send to a read replica: drop it to write)")
		require.ErrorContains(t, err, "SQLSTATE 25006")
		require.Equal(t, 1, runs, "a write refused by a replica is not retried")
		runs = 0
		err = u.Do(ctx, func(ctx context.Context, q *store) error {
			runs++
			return u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, 100, "refused") }, uow.ReadOnly())
		})
		require.ErrorContains(t, err, "SQLSTATE 25006")
		require.Equal(t, 1, runs, "a write refused by a nested ReadOnly call is not retried")
		require.Equal(t, []int{1}, ids(t, r.primary))

		st := rs.Status()
		require.Len(t, st, 1)
		require.True(t, st[0].Healthy, "%+v", st[0])
		require.False(t, st[0].Replayed.IsZero())
	})

	t.Run("read-your-writes holds on a replica slowed down on purpose", func(t *testing.T) {
		rs := newReplicaSet(t, r.primary, []*pgxpool.Pool{r.slowPool},
			uow.ReplicaProbeInterval(20*time.Millisecond), uow.ReplicaMaxLag(time.Minute), uow.ReplicaTokenWait(30*time.Second))
		u := uow.New(r.primary, newStore, uow.WithReplicaSet(rs))
		require.NoError(t, r.slow.CatchUp(ctx))
		before, err := readItems(ctx, u)
		require.NoError(t, err)

		var tok uow.Token
		write(t, u, "mine", uow.CaptureToken(&tok))
		require.False(t, tok.IsZero())
		stale, err := readItems(ctx, u)
		require.NoError(t, err)
		require.Equal(t, before, stale, "without the token the delayed replica does not show the write yet")
		require.True(t, stale.onStandby)

		fresh, err := readItems(uow.ContextWithToken(ctx, tok), u)
		require.NoError(t, err)
		require.True(t, fresh.onStandby, "the read waited for the replica")
		require.Equal(t, append(before.notes, "mine"), fresh.notes, "the token's read shows the write")

		// A token the replica cannot reach within the wait sends the read to
		// the primary.
		short := newReplicaSet(t, r.primary, []*pgxpool.Pool{r.slowPool},
			uow.ReplicaMaxLag(time.Minute), uow.ReplicaTokenWait(time.Millisecond))
		us := uow.New(r.primary, newStore, uow.WithReplicaSet(short))
		write(t, us, "mine again", uow.CaptureToken(&tok))
		w, err := readItems(ctx, us, uow.AfterToken(tok))
		require.NoError(t, err)
		require.False(t, w.onStandby, "a replica behind the token past the wait: the primary")
		require.Equal(t, append(fresh.notes, "mine again"), w.notes)

		parsed, err := uow.ParseToken(tok.String())
		require.NoError(t, err)
		require.Equal(t, tok, parsed)
	})

	t.Run("lag above the bound routes to the primary", func(t *testing.T) {
		rs := newReplicaSet(t, r.primary, []*pgxpool.Pool{r.slowPool},
			uow.ReplicaProbeInterval(20*time.Millisecond), uow.ReplicaMaxLag(300*time.Millisecond))
		u := uow.New(r.primary, newStore, uow.WithReplicaSet(rs))
		require.NoError(t, r.slow.CatchUp(ctx))
		require.NoError(t, rs.Probe(ctx))
		w, err := readItems(ctx, u)
		require.NoError(t, err)
		require.True(t, w.onStandby, "a replica that caught up is within the bound: %+v", rs.Status())

		write(t, u, "lagging")
		waitFor(t, ctx, "the delayed replica to lag past 300ms", func() bool { return rs.Status()[0].Lag > 300*time.Millisecond })
		st := rs.Status()[0]
		require.True(t, st.Healthy)
		require.Positive(t, st.LagBytes)
		w, err = readItems(ctx, u)
		require.NoError(t, err)
		require.False(t, w.onStandby, "a replica lagging past the bound: the primary (%s behind)", st.Lag)
		require.Contains(t, w.notes, "lagging")

		require.NoError(t, r.slow.CatchUp(ctx))
		waitFor(t, ctx, "the replica to be within the bound again", func() bool { return rs.Status()[0].Lag <= 300*time.Millisecond })
		w, err = readItems(ctx, u)
		require.NoError(t, err)
		require.True(t, w.onStandby, "back on the replica once it caught up")
	})

	t.Run("a stopped replica makes reads fall back, then come back", func(t *testing.T) {
		rs := newReplicaSet(t, r.primary, []*pgxpool.Pool{r.fastPool}, uow.ReplicaProbeInterval(20*time.Millisecond))
		u := uow.New(r.primary, newStore, uow.WithReplicaSet(rs))
		w, err := readItems(ctx, u)
		require.NoError(t, err)
		require.True(t, w.onStandby)

		require.NoError(t, r.fast.Halt(ctx))
		// Before the prober notices, a read may pick the replica and lose its
		// connection: it is retried once, elsewhere.
		w, err = readItems(ctx, u)
		require.NoError(t, err)
		require.False(t, w.onStandby, "a stopped replica: the primary")
		require.False(t, rs.Status()[0].Healthy)

		require.NoError(t, r.fast.Resume(ctx))
		waitFor(t, ctx, "the prober to see the replica again", func() bool { return rs.Status()[0].Healthy })
		w, err = readItems(ctx, u)
		require.NoError(t, err)
		require.True(t, w.onStandby, "a replica back up takes reads again")
	})

	t.Run("a read-only primary after a failover is retried once on a fresh connection", func(t *testing.T) {
		// The pool's address lists the primary, then the spare standby;
		// target_session_attrs=read-write makes a new connection skip a
		// read-only server. The spare is promoted and the old primary fenced
		// (default_transaction_read_only): its open sessions refuse writes.
		url := fmt.Sprintf("postgres://postgres@127.0.0.1:%s,127.0.0.1:%s/postgres?sslmode=disable&target_session_attrs=read-write",
			port(t, r.srv.URL()), port(t, r.spare.URL()))
		cfg, err := pgxpool.ParseConfig(url)
		require.NoError(t, err)
		cfg.MaxConns = 1
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		u := uow.New(pool, newStore)
		write(t, u, "before the failover")
		require.NoError(t, r.spare.CatchUp(ctx))

		require.NoError(t, r.spare.Promote(ctx))
		_, err = r.primary.Exec(ctx, "ALTER SYSTEM SET default_transaction_read_only = on")
		require.NoError(t, err)
		_, err = r.primary.Exec(ctx, "SELECT pg_reload_conf()")
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = r.primary.Exec(context.Background(), "ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf()")
		})
		waitFor(t, ctx, "the pool's session on the old primary to turn read-only", func() bool {
			var ro string
			require.NoError(t, pool.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&ro))
			return ro == "on"
		})

		var attempts []int
		var onStandby bool
		next++
		require.NoError(t, u.Do(ctx, func(ctx context.Context, q *store) error {
			attempts = append(attempts, uow.Attempt(ctx))
			if err := q.db.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&onStandby); err != nil {
				return err
			}
			return q.put(ctx, next, "after the failover")
		}))
		require.Equal(t, []int{1, 2}, attempts, "refused once by the old primary, then run again")
		require.False(t, onStandby)
		var notes []string
		spare := newPool(t, ctx, r.spare.URL())
		require.NoError(t, spare.QueryRow(ctx, "SELECT array_agg(note ORDER BY id) FROM items WHERE note LIKE '%failover'").Scan(&notes))
		require.Equal(t, []string{"before the failover", "after the failover"}, notes, "the write landed on the promoted standby")
		require.Equal(t, 0, count(t, r.primary, "after the failover"), "and not on the old primary")
	})
}

func port(t *testing.T, url string) string {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	return fmt.Sprint(cfg.ConnConfig.Port)
}

func count(t *testing.T, pool *pgxpool.Pool, note string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM items WHERE note = $1", note).Scan(&n))
	return n
}

func TestNewReplicaSetReportsEveryBadInput(t *testing.T) {
	t.Parallel()
	_, err := uow.NewReplicaSet(nil, []*pgxpool.Pool{nil},
		uow.ReplicaMaxLag(0), uow.ReplicaProbeInterval(time.Hour), uow.ReplicaTokenWait(-time.Second), nil)
	require.EqualError(t, err, `uow: NewReplicaSet: primary must not be nil
uow: NewReplicaSet: replica 0 is nil
uow: ReplicaMaxLag: must be positive, got 0s
uow: ReplicaProbeInterval: must be within 10ms and 1m0s, got 1h0m0s
uow: ReplicaTokenWait: must not be negative, got -1s
uow: NewReplicaSet: option 3 is nil`)
}
