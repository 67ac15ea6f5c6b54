package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/localpg"
	"github.com/cortexerp/datalayer/provider"
	"github.com/cortexerp/datalayer/uow"
)

// retryOnLossCodes replays a unit of work on the SQLSTATEs of a lost
// connection; retryOnConnLost also on any broken or unobtainable connection
// (network errors carry no SQLSTATE), which uow knows happened before COMMIT.
var (
	retryOnLossCodes = uow.RetryPolicy{
		MaxAttempts: 4,
		BaseDelay:   5 * time.Millisecond,
		MaxDelay:    50 * time.Millisecond,
		Budget:      2 * time.Second,
		Codes:       connectionLossCodes,
	}
	retryOnConnLost = func() uow.RetryPolicy {
		p := retryOnLossCodes
		p.ConnLost = true
		return p
	}()
)

// TestServerRestartUnderLoad halts the server (a fast shutdown, which ends
// every session with FATAL 57P01, COMMITs in flight included) while workers
// commit units of work, and resumes it on the same port, a few times. Every
// Do that returned nil must have its row exactly once, every other Do none,
// except those that returned ErrCommitUnknown (zero or one row); the pool
// must serve new work afterwards and give every connection back.
func TestServerRestartUnderLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		retry *uow.RetryPolicy
	}{
		{name: "without retry, a Do that failed wrote nothing", retry: nil},
		{name: "with retry on connection-loss SQLSTATEs, no Do is applied twice", retry: &retryOnLossCodes},
		{name: "with retry on any lost connection, no Do is applied twice", retry: &retryOnConnLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { restartUnderLoad(t, tt.retry) })
	}
}

func policyName(p *uow.RetryPolicy) string {
	switch {
	case p == nil:
		return "none"
	case p.ConnLost:
		return "codes " + strings.Join(p.Codes, ",") + " and ConnLost"
	default:
		return "codes " + strings.Join(p.Codes, ",")
	}
}

// restartRecord is what one worker learned from one Do.
type restartRecord struct {
	seq      int
	err      error
	attempts int // the last attempt fn saw (0: fn never ran)
}

// serverGate holds workers back while the server is known to be down, so
// that they do not spin on refused connections; a closed channel means up.
type serverGate struct {
	mu sync.Mutex
	up chan struct{}
}

func newServerGate() *serverGate {
	g := &serverGate{up: make(chan struct{})}
	close(g.up)
	return g
}

func (g *serverGate) current() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.up
}

func (g *serverGate) down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.up = make(chan struct{})
}

func (g *serverGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.up)
}

func restartUnderLoad(t *testing.T, retry *uow.RetryPolicy) {
	const (
		workers    = 8
		restarts   = 4
		okPerPhase = 250 // committed units of work between restarts
	)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()

	srv, err := localpg.Start(ctx, localpg.WithSources(localpg.SourceBinaries))
	require.NoError(t, err)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Stop(sctx))
	})
	url := srv.URL()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, faultsSchema)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	pool := faultsPool(t, ctx, url, "faults-restart", workers)
	u := uow.New(pool, newFaultsQueries)
	p, err := provider.New(ctx,
		provider.WithEnvironment(map[string]string{
			"DATABASE_URL":            url,
			"DB_MAIN_CONNECT_TIMEOUT": "2s",
		}),
		provider.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		require.NoError(t, p.Close(cctx))
	})
	require.True(t, p.Health(ctx).OK, "health before the first restart")

	var opts []uow.TxOption
	if retry != nil {
		opts = append(opts, uow.Retry(*retry))
	}
	gate := newServerGate()
	var committed milestones
	records := make([][]restartRecord, workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopWorkers := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopWorkers() // also when an assertion below ends the test early
	for w := range workers {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				case <-gate.current():
				}
				rec := restartRecord{seq: seq}
				dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
				rec.err = u.Do(dctx, func(ctx context.Context, q *faultsQueries) error {
					rec.attempts = uow.Attempt(ctx)
					// Odd keys read first: their COMMIT carries the xid probe.
					if seq%2 == 1 {
						exists, err := q.RestartRowExists(ctx, w, seq)
						if err != nil {
							return err
						}
						if exists {
							return fmt.Errorf("row (%d, %d) already there at attempt %d: an earlier attempt committed and the unit of work replayed it", w, seq, rec.attempts)
						}
					}
					return q.RestartRowInsert(ctx, w, seq, rec.attempts)
				}, opts...)
				dcancel()
				records[w] = append(records[w], rec)
				if rec.err == nil {
					committed.add()
				}
			}
		})
	}

	downErrs := errorTally{}
	target := 0
	for range restarts {
		target += okPerPhase
		committed.await(t, ctx, target, "committed units of work before a restart")
		require.NoError(t, srv.Halt(ctx))
		gate.down()
		require.Eventually(t, func() bool {
			r := p.Health(ctx)
			if !r.OK && len(r.Checks) == 1 {
				downErrs.add(errors.New(r.Checks[0].Error))
			}
			return !r.OK
		}, 10*time.Second, 10*time.Millisecond, "Health while the server is halted")
		require.NoError(t, srv.Resume(ctx))
		gate.open()
		require.Eventually(t, func() bool { return p.Health(ctx).OK }, 10*time.Second, 10*time.Millisecond,
			"Health after the server resumed")
	}
	target += okPerPhase
	committed.await(t, ctx, target, "committed units of work after the last restart")
	stopWorkers()

	// The same pool serves new work after the restarts.
	require.NoError(t, u.Do(ctx, func(ctx context.Context, q *faultsQueries) error {
		return q.RestartRowInsert(ctx, -1, 0, uow.Attempt(ctx))
	}, opts...), "a unit of work on the pool after the restarts")
	requireReleased(t, pool, "workers'")

	// Every key's rows, from the database.
	type key struct{ worker, seq int }
	rowsOf, attemptOf := map[key]int{}, map[key]int{}
	rows, err := pool.Query(ctx, "SELECT worker, seq, count(*), max(attempt) FROM restart_rows GROUP BY worker, seq")
	require.NoError(t, err)
	defer rows.Close()
	var rowsTotal int
	for rows.Next() {
		var k key
		var n, attempt int
		require.NoError(t, rows.Scan(&k.worker, &k.seq, &n, &attempt))
		rowsOf[k], attemptOf[k] = n, attempt
		rowsTotal += n
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 1, rowsOf[key{-1, 0}], "the row of the unit of work after the restarts")
	delete(rowsOf, key{-1, 0})
	rowsTotal--

	var ok, failed, unknown, unknownCommitted, retried, checked int
	failures, unknowns := errorTally{}, errorTally{}
	var bad violations
	for w, recs := range records {
		for _, r := range recs {
			k := key{w, r.seq}
			n, found := rowsOf[k]
			delete(rowsOf, k)
			checked++
			if r.attempts > 1 {
				retried++
			}
			switch outcomeOf(r.err) {
			case outcomeOK:
				ok++
				if n != 1 {
					bad.addf("Do (%d, %d) returned nil after %d attempts but its key has %d rows", w, r.seq, r.attempts, n)
				} else if attemptOf[k] != r.attempts {
					bad.addf("Do (%d, %d) returned nil after %d attempts but attempt %d committed", w, r.seq, r.attempts, attemptOf[k])
				}
			case outcomeUnknown:
				unknown++
				unknowns.add(r.err)
				if n == 1 {
					unknownCommitted++
				}
				if n > 1 {
					bad.addf("Do (%d, %d) returned %q but its key has %d rows", w, r.seq, r.err, n)
				}
			case outcomeFailed:
				failed++
				failures.add(r.err)
				if found {
					bad.addf("Do (%d, %d) failed after %d attempts but its key has %d rows; it returned: %v", w, r.seq, r.attempts, n, r.err)
				}
			}
		}
	}
	for k, n := range rowsOf {
		bad.addf("key (%d, %d) has %d rows but no Do wrote it", k.worker, k.seq, n)
	}
	t.Logf("retry: %s; Dos: %d ok, %d failed, %d unknown (%d of them committed); %d ran more than once; "+
		"%d restarts; %d keys and %d rows checked\nfailures:%s\nunknown outcomes:%s\nhealth while halted:%s",
		policyName(retry), ok, failed, unknown, unknownCommitted, retried, restarts, checked, rowsTotal, failures, unknowns, downErrs)
	bad.requireNone(t, "rows against the outcomes the clients saw")
	require.Equal(t, ok+unknownCommitted, rowsTotal, "rows: one per committed unit of work")
	require.GreaterOrEqual(t, ok, (restarts+1)*okPerPhase)
	require.Positive(t, failed+unknown, "the restarts cut no unit of work short: the test exercised nothing")
}
