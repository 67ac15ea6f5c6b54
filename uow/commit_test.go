package uow_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

// cutAtCommit arms w to cut the connection at the next COMMIT: after sending
// it (the server commits) or before (the server rolls back).
func cutAtCommit(w *wire, send bool) {
	w.setOnWrite(func(c *wireConn, b []byte) bool {
		if !isSimpleQuery(b, "COMMIT") {
			return false
		}
		w.setOnWrite(nil) // one shot
		if send {
			_, _ = c.Conn.Write(b)
		}
		_ = c.Close()
		return true
	})
}

func TestCommitOutcomeAfterALostConnection(t *testing.T) {
	t.Parallel()
	t.Run("committed on the server: nil", func(t *testing.T) {
		t.Parallel()
		pool, w := newDB(t)
		u := uow.New(pool, newStore)
		err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
			if err := q.put(ctx, 1, "a"); err != nil {
				return err
			}
			cutAtCommit(w, true)
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, []int{1}, ids(t, pool))
		requireIdle(t, pool)
	})
	t.Run("aborted on the server: retryable, and retried", func(t *testing.T) {
		t.Parallel()
		pool, w := newDB(t)
		u := uow.New(pool, newStore)
		var attempts []int
		err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
			attempts = append(attempts, uow.Attempt(ctx))
			if err := q.put(ctx, uow.Attempt(ctx), "a"); err != nil {
				return err
			}
			if uow.Attempt(ctx) == 1 {
				cutAtCommit(w, false)
			}
			return nil
		})
		require.ErrorIs(t, err, uow.ErrCommitAborted)
		require.Empty(t, ids(t, pool))

		attempts = nil
		err = u.Do(t.Context(), func(ctx context.Context, q *store) error {
			attempts = append(attempts, uow.Attempt(ctx))
			if err := q.put(ctx, uow.Attempt(ctx), "a"); err != nil {
				return err
			}
			if uow.Attempt(ctx) == 1 {
				cutAtCommit(w, false)
			}
			return nil
		}, uow.Retry(uow.DefaultRetry))
		require.NoError(t, err)
		require.Equal(t, []int{1, 2}, attempts)
		require.Equal(t, []int{2}, ids(t, pool))
	})
	t.Run("transaction id not learned yet: ErrCommitUnknown", func(t *testing.T) {
		t.Parallel()
		pool, w := newDB(t)
		u := uow.New(pool, newStore)
		err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
			if _, err := q.count(ctx); err != nil { // a read first: no transaction id yet
				return err
			}
			if err := q.put(ctx, 1, "a"); err != nil {
				return err
			}
			w.setOnWrite(func(c *wireConn, b []byte) bool { // cut the next write: the COMMIT batch
				w.setOnWrite(nil)
				_ = c.Close()
				return true
			})
			return nil
		}, uow.Retry(uow.DefaultRetry))
		require.ErrorIs(t, err, uow.ErrCommitUnknown)
		require.Empty(t, ids(t, pool))
	})
	t.Run("server unreachable: ErrCommitUnknown, never retried", func(t *testing.T) {
		t.Parallel()
		pool, w := newDB(t)
		u := uow.New(pool, newStore)
		calls := 0
		err := u.Do(t.Context(), func(ctx context.Context, q *store) error {
			calls++
			if err := q.put(ctx, 1, "a"); err != nil {
				return err
			}
			cutAtCommit(w, true)
			w.mu.Lock()
			w.failDials = true
			w.mu.Unlock()
			return nil
		}, uow.Retry(uow.DefaultRetry))
		require.ErrorIs(t, err, uow.ErrCommitUnknown)
		require.Equal(t, 1, calls)
		w.mu.Lock()
		w.failDials = false
		w.mu.Unlock()
		require.Equal(t, []int{1}, ids(t, pool), "the server did commit; the unit of work could not know")
	})
}
