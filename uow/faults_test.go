package uow_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

// TestBackendKilledMidUnitOfWork terminates the backend between two
// statements: nothing of the unit of work remains, the connection goes back
// to the pool, and a policy that retries connection loss replays it once.
func TestBackendKilledMidUnitOfWork(t *testing.T) {
	t.Parallel()
	admin, _ := newDBWith(t, nil) // another database of the server: it sees every backend
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, _, _ := newFaultDB(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			u := uow.New(pool, newStore)
			for _, policy := range []*uow.RetryPolicy{nil, &connLoss} {
				calls := 0
				key := "no retry"
				opts := retryOpts(policy)
				if policy != nil {
					key = "retry"
				}
				err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
					calls++
					if err := q.apply(ctx, key+" first"); err != nil {
						return err
					}
					var pid uint32
					if err := q.db.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
						return err
					}
					if uow.Attempt(ctx) == 1 {
						_, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
						require.NoError(t, err)
						backendGone(t, admin, pid)
					}
					return q.apply(ctx, key+" second")
				}, opts...)
				got := appliedKeys(t, pool)
				if policy == nil {
					require.Error(t, err)
					require.Equal(t, 1, calls)
					require.Zero(t, got[key+" first"], "no partial write")
				} else {
					require.NoError(t, err, "COMMIT was never sent: replaying is safe")
					require.Equal(t, 2, calls)
					require.Equal(t, 1, got[key+" first"])
					require.Equal(t, 1, got[key+" second"])
				}
				requireIdle(t, pool)
			}
			require.NoError(t, u.Do(t.Context(), func(ctx context.Context, q *store) error { return q.apply(ctx, "next") }))
			require.Equal(t, 1, appliedKeys(t, pool)["next"])
		})
	}
}

// TestDeadlineStopsServerWorkWhenCancelCannotReachIt gives a unit of work a
// deadline and blocks pgx's cancel request (it needs a new connection): the
// statement_timeout derived from the deadline still stops the server's work.
func TestDeadlineStopsServerWorkWhenCancelCannotReachIt(t *testing.T) {
	t.Parallel()
	admin, _ := newDBWith(t, nil)
	t.Run("a long statement", func(t *testing.T) {
		t.Parallel()
		pool, w := newDBWith(t, func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["application_name"] = "sleeper" })
		u := uow.New(pool, newStore)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		began := time.Now()
		err := u.Do(ctx, func(ctx context.Context, q *store) error {
			w.mu.Lock()
			w.failDials = true // from now on, a cancel request cannot connect
			w.mu.Unlock()
			_, err := q.db.Exec(ctx, "SELECT pg_sleep(60)")
			return err
		})
		t.Logf("returned after %v: %v", time.Since(began), err)
		require.Error(t, err)
		require.True(t, errors.Is(err, context.DeadlineExceeded) || sqlState(err) == pgerrcode.QueryCanceled, "err: %v", err)
		require.Eventually(t, func() bool {
			var n int
			err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sleeper' AND state = 'active'").Scan(&n)
			return err == nil && n == 0
		}, 20*time.Second, 10*time.Millisecond, "the server still runs pg_sleep(60)")
	})
	t.Run("a lock wait", func(t *testing.T) {
		t.Parallel()
		pool, w := newDBWith(t, func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["application_name"] = "waiter" })
		u := uow.New(pool, newStore)
		holder, err := pool.Begin(t.Context())
		require.NoError(t, err)
		defer func() { _ = holder.Rollback(context.WithoutCancel(t.Context())) }()
		_, err = holder.Exec(t.Context(), "SELECT * FROM accounts WHERE id = 1 FOR UPDATE")
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		err = u.Do(ctx, func(ctx context.Context, q *store) error {
			w.mu.Lock()
			w.failDials = true
			w.mu.Unlock()
			_, err := q.db.Exec(ctx, "UPDATE accounts SET balance = 0 WHERE id = 1")
			return err
		})
		require.Error(t, err)
		require.Eventually(t, func() bool {
			var n int
			err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'waiter' AND wait_event_type = 'Lock'").Scan(&n)
			return err == nil && n == 0
		}, 20*time.Second, 10*time.Millisecond, "the server still waits for the lock")
		require.NoError(t, holder.Commit(t.Context()))
	})
}

// TestTimeoutsAreNeverRetriedByDefault: lock_timeout (55P03) and
// statement_timeout (57014) say the work takes too long; replaying it would
// only take longer.
func TestTimeoutsAreNeverRetriedByDefault(t *testing.T) {
	t.Parallel()
	pool, _ := newDB(t)
	u := uow.New(pool, newStore)
	holder, err := pool.Begin(t.Context())
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(context.WithoutCancel(t.Context())) }()
	_, err = holder.Exec(t.Context(), "SELECT * FROM accounts WHERE id = 1 FOR UPDATE")
	require.NoError(t, err)

	for _, tc := range []struct {
		sql  string
		opt  uow.TxOption
		code string
	}{
		{"UPDATE accounts SET balance = 0 WHERE id = 1", uow.LockTimeout(50 * time.Millisecond), pgerrcode.LockNotAvailable},
		{"SELECT pg_sleep(5)", uow.StatementTimeout(50 * time.Millisecond), pgerrcode.QueryCanceled},
	} {
		calls := 0
		err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
			calls++
			_, err := q.db.Exec(ctx, tc.sql)
			return err
		}, tc.opt, uow.Retry(uow.DefaultRetry))
		require.Equal(t, tc.code, sqlState(err), "err: %v", err)
		require.Equal(t, 1, calls)
	}
}

func TestPoolExhaustion(t *testing.T) {
	t.Parallel()
	t.Run("a unit of work waiting for a connection fails at its deadline", func(t *testing.T) {
		t.Parallel()
		pool, _, _ := newFaultDB(t, func(c *pgxpool.Config) { c.MaxConns = 1 })
		u := uow.New(pool, newStore)
		held, err := pool.Acquire(t.Context())
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		err = u.Do(ctx, func(ctx context.Context, q *store) error { return q.apply(ctx, "starved") })
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "uow: acquire connection")
		held.Release()
		require.Empty(t, appliedKeys(t, pool))
		requireIdle(t, pool)
	})
	t.Run("nested units of work never take a second connection", func(t *testing.T) {
		t.Parallel()
		pool, _, _ := newFaultDB(t, func(c *pgxpool.Config) { c.MaxConns = 1 })
		u := uow.New(pool, newStore)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var nest func(ctx context.Context, depth int) error
		nest = func(ctx context.Context, depth int) error {
			return u.Do(ctx, func(ctx context.Context, q *store) error {
				if err := q.apply(ctx, "depth "+strconv.Itoa(depth)); err != nil {
					return err
				}
				if _, err := u.DB(ctx).Exec(ctx, "SELECT 1"); err != nil {
					return err
				}
				require.EqualValues(t, 1, pool.Stat().AcquiredConns())
				if depth == 3 {
					return nil
				}
				return nest(ctx, depth+1)
			})
		}
		require.NoError(t, nest(ctx, 0))
		require.Equal(t, map[string]int{"depth 0": 1, "depth 1": 1, "depth 2": 1, "depth 3": 1}, appliedKeys(t, pool))
	})
}

// TestBrokenFirstStatementOfANestedCall: a nested call whose first statement
// cannot be parsed, prepared or encoded rolls back alone, in every exec mode:
// its lazy SAVEPOINT must have run before the statement could fail.
func TestBrokenFirstStatementOfANestedCall(t *testing.T) {
	t.Parallel()
	broken := []struct {
		name string
		sql  string
		args []any
	}{
		{"a syntax error", "INSERT INTO items VALUES (2", nil},
		{"an unknown column", "INSERT INTO items (id, nope) VALUES (2, 'x')", nil},
		{"a NUL in a parameter of a statement that ran before", "INSERT INTO items (id, note) VALUES ($1, $2)", []any{2, "a\x00b"}},
		{"invalid UTF-8 in a parameter of a statement that ran before", "INSERT INTO items (id, note) VALUES ($1, $2)", []any{2, "a\xffb"}},
		{"invalid UTF-8 in the statement", "INSERT INTO items (id, note) VALUES (2, 'a\xffb')", nil},
		{"a NUL in the statement", "INSERT INTO items (id, note) VALUES (2, 'a\x00b')", nil},
	}
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, _ := newDBWith(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			u := uow.New(pool, newStore)
			for _, b := range broken {
				t.Run(b.name, func(t *testing.T) {
					_, err := pool.Exec(t.Context(), "TRUNCATE items")
					require.NoError(t, err)
					err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
						if err := q.put(ctx, 1, "outer"); err != nil {
							return err
						}
						for range 2 { // the second time, the statement may be known to the pool
							err := u.Do(ctx, func(ctx context.Context, q *store) error {
								_, err := q.db.Exec(ctx, b.sql, b.args...)
								return err
							})
							require.Error(t, err)
							require.NotContains(t, err.Error(), "uow: savepoint", "the statement's error, not the savepoint's")
						}
						return q.put(ctx, 3, "outer")
					})
					require.NoError(t, err)
					require.Equal(t, []int{1, 3}, ids(t, pool))
					requireIdle(t, pool)
				})
			}
		})
	}
}

// TestStatementErrorsAreNotLabelledWithTheirCompanions: BEGIN, SET LOCAL and
// SAVEPOINT travel with the first statement; its own errors must not carry
// their names.
func TestStatementErrorsAreNotLabelledWithTheirCompanions(t *testing.T) {
	t.Parallel()
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, _ := newDBWith(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			u := uow.New(pool, newStore)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // SET LOCAL statement_timeout travels too
			defer cancel()
			for _, sql := range []string{"INSERT INTO items VALUES (2", "SELECT no_such_column FROM items"} {
				err := u.Do(ctx, func(ctx context.Context, q *store) error {
					_, err := q.db.Exec(ctx, sql)
					return err
				}, uow.LockTimeout(time.Second))
				require.Error(t, err)
				_, ok := errors.AsType[*pgconn.PgError](err)
				require.True(t, ok, "a typed error: %v", err)
				for _, label := range []string{"uow: begin", "SET LOCAL", "uow: savepoint"} {
					require.NotContains(t, err.Error(), label)
				}
			}
			requireIdle(t, pool)
		})
	}
}

// TestHostileParameters sends values a hostile user would through typed
// queries and DB(ctx), each the first statement of a nested call, in every
// exec mode: good values arrive byte for byte, bad ones fail with a typed
// error that rolls back only their call, and the canary table survives.
func TestHostileParameters(t *testing.T) {
	t.Parallel()
	hostile := []struct {
		name  string
		value string
		bad   bool
	}{
		{"quotes", `O'Brien said "hi" '' '`, false},
		{"a statement in a string", `x'); DROP TABLE canary; --`, false},
		{"comment markers", "/* -- */ */ /* --", false},
		{"dollar quotes and placeholders", "$$ $tag$ $1 $2 $$", false},
		{"backslashes", `\' \\ \x00 E'\n'`, false},
		{"unicode", "Grüße 🧾 \u202e\u0301", false},
		{"a multi-megabyte text", strings.Repeat("ab'c", 1<<20), false},
		{"NUL", "a\x00b", true},
		{"invalid UTF-8", "a\xff\xfeb", true},
	}
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, _ := newDBWith(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			_, err := pool.Exec(t.Context(), "CREATE TABLE canary (v int); INSERT INTO canary VALUES (42)")
			require.NoError(t, err)
			u := uow.New(pool, newStore)
			want := map[int]string{1: "outer", 2: "outer again"}
			err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
				if err := q.put(ctx, 1, "outer"); err != nil {
					return err
				}
				for i, h := range hostile {
					for j, via := range []string{"typed", "DB(ctx)"} {
						id := 100 + 2*i + j
						err := u.Do(ctx, func(ctx context.Context, q *store) error {
							if via == "typed" {
								return q.put(ctx, id, h.value)
							}
							_, err := u.DB(ctx).Exec(ctx, "INSERT INTO items (note, id) VALUES ($1, $2)", h.value, id)
							return err
						})
						if !h.bad {
							require.NoError(t, err, "%s via %s", h.name, via)
							want[id] = h.value
							continue
						}
						pgErr, ok := errors.AsType[*pgconn.PgError](err)
						require.True(t, ok, "%s via %s: a typed error, got %v", h.name, via, err)
						require.Contains(t, []string{pgerrcode.CharacterNotInRepertoire, pgerrcode.ProtocolViolation}, pgErr.Code, "%s via %s", h.name, via)
					}
				}
				return q.put(ctx, 2, "outer again")
			})
			require.NoError(t, err)
			rows, err := pool.Query(t.Context(), "SELECT id, note FROM items")
			require.NoError(t, err)
			got := map[int]string{}
			for rows.Next() {
				var id int
				var note string
				require.NoError(t, rows.Scan(&id, &note))
				got[id] = note
			}
			require.NoError(t, rows.Err())
			require.Equal(t, len(want), len(got))
			for id, v := range want {
				require.True(t, got[id] == v, "row %d: the value did not arrive byte for byte", id)
			}
			var canary int
			require.NoError(t, pool.QueryRow(t.Context(), "SELECT v FROM canary").Scan(&canary))
			require.Equal(t, 42, canary)
			requireIdle(t, pool)
		})
	}
}

// TestTooManyParameters: past 65,535 parameters the extended protocol cannot
// carry a statement; the error says what to do and nothing is sent, so only
// the nested call fails. simple_protocol inlines them and has no bound.
func TestTooManyParameters(t *testing.T) {
	t.Parallel()
	const n = 70_000
	var sb strings.Builder
	sb.WriteString("INSERT INTO items (id, note) SELECT g, 'p' FROM unnest(ARRAY[")
	args := make([]any, n)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "$%d", i+1)
		args[i] = 1000 + i
	}
	sb.WriteString("]::int[]) g")
	sql := sb.String()
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, _ := newDBWith(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			u := uow.New(pool, newStore)
			for _, first := range []bool{true, false} { // with BEGIN, and in a savepoint
				_, err := pool.Exec(t.Context(), "TRUNCATE items")
				require.NoError(t, err)
				var inner error
				err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
					if first {
						_, err := q.db.Exec(ctx, sql, args...)
						inner = err
						return err
					}
					if err := q.put(ctx, 1, "outer"); err != nil {
						return err
					}
					inner = u.Do(ctx, func(ctx context.Context, q *store) error {
						_, err := q.db.Exec(ctx, sql, args...)
						return err
					})
					return q.put(ctx, 2, "outer")
				})
				var count int
				require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM items WHERE note = 'p'").Scan(&count))
				if mode == pgx.QueryExecModeSimpleProtocol {
					require.NoError(t, inner)
					require.NoError(t, err)
					require.Equal(t, n, count)
					continue
				}
				require.ErrorIs(t, inner, uow.ErrTooManyParameters)
				require.EqualError(t, inner, "uow: too many parameters in one statement: 70000, PostgreSQL takes at most 65535 (pass a list as one array parameter, = ANY($1::bigint[]), or use CopyFrom)")
				require.Zero(t, count)
				if !first {
					require.NoError(t, err)
					require.Equal(t, []int{1, 2}, ids(t, pool))
				}
			}
			requireIdle(t, pool)
		})
	}
}
