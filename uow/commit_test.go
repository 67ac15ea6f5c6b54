package uow_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

// connLoss replays attempts whose connection was lost and names every
// connection-loss SQLSTATE too: the strongest temptation to apply work twice.
var connLoss = uow.RetryPolicy{
	MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond, ConnLost: true,
	Codes: []string{pgerrcode.AdminShutdown, pgerrcode.CrashShutdown, pgerrcode.CannotConnectNow,
		pgerrcode.ConnectionFailure, pgerrcode.ConnectionException},
}

// TestSessionEndedAroundCommit ends the session at every point around COMMIT,
// in every exec mode, with the transaction id known before COMMIT or riding
// with it, with and without a policy that retries connection loss. The
// outcome is nil only when the work is committed, the work is never applied
// twice, and ErrCommitUnknown comes only when nothing can tell.
func TestSessionEndedAroundCommit(t *testing.T) {
	t.Parallel()
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, _, in := newFaultDB(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			u := uow.New(pool, newStore)
			separatePrepare := mode != pgx.QueryExecModeExec && mode != pgx.QueryExecModeSimpleProtocol
			for _, c := range []cut{cutBeforeWrite, cutAfterWrite, cutReplyLost, cutFatalAfterTag, cutEOFAfterTag} {
				for _, readFirst := range []bool{false, true} {
					for _, policy := range []*uow.RetryPolicy{nil, &connLoss} {
						xid := "transaction id known before COMMIT"
						if readFirst {
							xid = "transaction id riding with COMMIT"
						}
						retry := "no retry"
						if policy != nil {
							retry = "retrying connection loss"
						}
						t.Run(fmt.Sprintf("%v, %s, %s", c, xid, retry), func(t *testing.T) {
							key := t.Name()
							calls := 0
							opts := retryOpts(policy)
							err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
								calls++
								if readFirst {
									if _, err := q.count(ctx); err != nil {
										return err
									}
								}
								if err := q.apply(ctx, key); err != nil {
									return err
								}
								if uow.Attempt(ctx) == 1 {
									in.arm(c) // the next write is the COMMIT's
								}
								return nil
							}, opts...)
							select {
							case <-in.fired:
							default:
								t.Fatal("the fault was armed but did not happen")
							}
							got := appliedKeys(t, pool)[key]
							switch {
							case c == cutBeforeWrite && readFirst:
								// Nothing tells whether COMMIT left: without the
								// transaction id the server cannot be asked.
								require.ErrorIs(t, err, uow.ErrCommitUnknown)
								require.Equal(t, 1, calls, "an unknown outcome is never retried")
								require.Equal(t, 0, got)
							case c == cutBeforeWrite && policy == nil:
								require.ErrorIs(t, err, uow.ErrCommitAborted)
								require.Equal(t, 0, got)
							case c == cutBeforeWrite:
								require.NoError(t, err, "the server rolled back: replaying is safe")
								require.Equal(t, 2, calls)
								require.Equal(t, 1, got)
							case c == cutAfterWrite && readFirst && separatePrepare && policy == nil:
								// The write was the prepare of the probe and COMMIT:
								// pgx reports that nothing of the batch ran.
								require.ErrorIs(t, err, uow.ErrCommitAborted)
								require.Equal(t, 0, got)
							case c == cutAfterWrite && readFirst && separatePrepare:
								require.NoError(t, err, "the server rolled back: replaying is safe")
								require.Equal(t, 2, calls)
								require.Equal(t, 1, got)
							case c == cutAfterWrite && readFirst:
								require.ErrorIs(t, err, uow.ErrCommitUnknown)
								require.Equal(t, 1, calls, "an unknown outcome is never retried")
								// The server got COMMIT; its session may still be
								// running it when Do has given up asking.
								require.Eventually(t, func() bool { return appliedKeys(t, pool)[key] == 1 },
									10*time.Second, 5*time.Millisecond, "the server committed")
							default:
								require.NoError(t, err, "the server committed")
								require.Equal(t, 1, calls)
								require.Equal(t, 1, got)
							}
							requireIdle(t, pool)
						})
					}
				}
			}
			// The pool serves new work.
			require.NoError(t, u.Do(t.Context(), func(ctx context.Context, q *store) error { return q.apply(ctx, "after") }))
			require.Equal(t, 1, appliedKeys(t, pool)["after"])
		})
	}
}

func TestCommitOutcomeWhenTheServerCannotBeAsked(t *testing.T) {
	t.Parallel()
	pool, w, in := newFaultDB(t, nil)
	u := uow.New(pool, newStore)
	calls := 0
	err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
		calls++
		if err := q.apply(ctx, "a"); err != nil {
			return err
		}
		in.arm(cutAfterWrite)
		w.mu.Lock()
		w.failDials = true
		w.mu.Unlock()
		return nil
	}, uow.Retry(connLoss))
	require.ErrorIs(t, err, uow.ErrCommitUnknown)
	require.Equal(t, 1, calls)
	w.mu.Lock()
	w.failDials = false
	w.mu.Unlock()
	require.Equal(t, map[string]int{"a": 1}, appliedKeys(t, pool), "the server did commit; the unit of work could not know")
}

// TestBackendsTerminatedRacingCommits runs units of work while another
// goroutine terminates their backends at random moments, COMMIT included.
func TestBackendsTerminatedRacingCommits(t *testing.T) {
	t.Parallel()
	pool, _, _ := newFaultDB(t, func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["application_name"] = "victim"
		c.MaxConns = 6
	})
	admin, _ := newDBWith(t, nil) // another database of the same server: it can see and end the victims
	u := uow.New(pool, newStore)
	const workers, perWorker = 4, 100
	type outcome struct {
		key string
		err error
	}
	outcomes := make(chan outcome, workers*perWorker)
	completed := make(chan struct{}, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := strconv.Itoa(w) + "-" + strconv.Itoa(i)
				policy := connLoss // half the workers retry connection loss, half never retry
				if w%2 == 1 {
					policy = uow.RetryPolicy{MaxAttempts: 1}
				}
				err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
					if err := q.apply(ctx, key); err != nil {
						return err
					}
					_, err := q.count(ctx)
					return err
				}, uow.Retry(policy))
				outcomes <- outcome{key, err}
				completed <- struct{}{}
			}
		})
	}
	var kills atomic.Int64
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		ctx := context.WithoutCancel(t.Context())
		for n := 0; n < workers*perWorker; n++ {
			<-completed
			if rand.N(4) != 0 {
				continue
			}
			var ended int64
			err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
				FROM (SELECT pid FROM pg_stat_activity WHERE application_name = 'victim' ORDER BY random() LIMIT 1) v`).Scan(&ended)
			if err == nil {
				kills.Add(ended)
			}
		}
	}()
	wg.Wait()
	<-killerDone
	close(outcomes)

	pool.Reset() // idle connections may have been terminated after their last use
	got := appliedKeys(t, pool)
	var ok, failed, unknown int
	for o := range outcomes {
		switch {
		case o.err == nil:
			ok++
			require.Equal(t, 1, got[o.key], "Do returned nil for %s", o.key)
		case isUnknown(o.err):
			unknown++
			require.LessOrEqual(t, got[o.key], 1, "%s applied twice", o.key)
		default:
			failed++
			require.Equal(t, 0, got[o.key], "Do failed for %s (%v) but its row exists", o.key, o.err)
		}
	}
	t.Logf("%d units of work: %d committed, %d failed, %d unknown; %d backends terminated", workers*perWorker, ok, failed, unknown, kills.Load())
	require.Positive(t, kills.Load(), "no backend was terminated: the test proved nothing")
	requireIdle(t, pool)
}

func isUnknown(err error) bool { return errors.Is(err, uow.ErrCommitUnknown) }

// TestSessionTerminatedBeforeCommit ends the backend for real (as a fast
// shutdown does) after fn's last statement, before COMMIT is sent: the
// server rolled back, and the unit of work knows it, also when the
// transaction id was to ride with COMMIT (the FATAL came in place of the
// probe's answer, so the COMMIT behind it never ran).
func TestSessionTerminatedBeforeCommit(t *testing.T) {
	t.Parallel()
	admin, _ := newDBWith(t, nil)
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, _, _ := newFaultDB(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			u := uow.New(pool, newStore)
			for _, readFirst := range []bool{false, true} {
				for _, policy := range []*uow.RetryPolicy{nil, &connLoss} {
					key := fmt.Sprintf("read first %v, retry %v", readFirst, policy != nil)
					calls := 0
					opts := retryOpts(policy)
					err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
						calls++
						if !readFirst { // the transaction id comes back with the first statement
							if err := q.apply(ctx, key); err != nil {
								return err
							}
						}
						var pid uint32
						if err := q.db.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
							return err
						}
						if readFirst { // the transaction id is to ride with COMMIT
							if err := q.apply(ctx, key); err != nil {
								return err
							}
						}
						if uow.Attempt(ctx) == 1 {
							_, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
							require.NoError(t, err)
							backendGone(t, admin, pid)
						}
						return nil
					}, opts...)
					got := appliedKeys(t, pool)[key]
					if policy == nil {
						require.ErrorIs(t, err, uow.ErrCommitAborted, key)
						require.Equal(t, 0, got, key)
					} else {
						require.NoError(t, err, key)
						require.Equal(t, 2, calls, key)
						require.Equal(t, 1, got, key)
					}
					requireIdle(t, pool)
				}
			}
		})
	}
}
