package uow_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/uow"
)

func TestCaptureToken(t *testing.T) {
	t.Parallel()
	primary, wire := newDB(t)
	u := uow.New(primary, newStore)
	ctx := t.Context()

	var first, second uow.Token
	require.NoError(t, u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, 1, "a") }, uow.CaptureToken(&first)))
	wire.reset()
	require.NoError(t, u.Do(ctx, func(ctx context.Context, q *store) error { return q.put(ctx, 2, "b") }, uow.CaptureToken(&second)))
	require.Equal(t, 3, wire.count(), "BEGIN+INSERT, COMMIT, then one round trip for the token")
	require.False(t, first.IsZero())
	a, b := first.String(), second.String()
	require.Regexp(t, `^[0-9A-F]+/[0-9A-F]+$`, a)
	require.NotEqual(t, a, b, "a later commit has a later position")

	read := uow.Token{}
	require.NoError(t, u.Do(ctx, func(ctx context.Context, q *store) error { _, err := q.count(ctx); return err },
		uow.ReadOnly(), uow.CaptureToken(&read)))
	require.True(t, read.IsZero(), "a read-only unit of work wrote nothing")
	empty := second
	require.NoError(t, u.Do(ctx, func(context.Context, *store) error { return nil }, uow.CaptureToken(&empty)))
	require.True(t, empty.IsZero(), "a unit of work that ran no statement wrote nothing")

	err := u.Do(ctx, func(ctx context.Context, q *store) error {
		return u.Do(ctx, func(context.Context, *store) error { return nil }, uow.CaptureToken(&read))
	})
	require.EqualError(t, err, "uow: CaptureToken: uow: option applies only to the outermost unit of work (this call is nested in another unit of work)")
	err = u.Do(ctx, func(ctx context.Context, q *store) error {
		return u.Do(ctx, func(context.Context, *store) error { return nil }, uow.AfterToken(second))
	})
	require.EqualError(t, err, "uow: AfterToken: uow: option applies only to the outermost unit of work (this call is nested in another unit of work)")
	require.EqualError(t, u.Do(ctx, func(context.Context, *store) error { return nil }, uow.CaptureToken(nil)),
		"uow: CaptureToken: dst must not be nil")
}

func TestTokenText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "primary", "16/B374D848"} {
		tok, err := uow.ParseToken(s)
		require.NoError(t, err)
		require.Equal(t, s, tok.String())
		b, err := json.Marshal(tok)
		require.NoError(t, err)
		var back uow.Token
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, tok, back)
	}
	_, err := uow.ParseToken("16")
	require.EqualError(t, err, `uow: ParseToken: "16" is not a WAL position (like 16/B374D848)`)

	ctx := uow.ContextWithToken(t.Context(), mustToken(t, "1/0"))
	ctx = uow.ContextWithToken(ctx, mustToken(t, "0/10"))
	require.Equal(t, "1/0", uow.TokenFromContext(ctx).String(), "the later token is kept")
	ctx = uow.ContextWithToken(ctx, mustToken(t, "primary"))
	require.Equal(t, "primary", uow.TokenFromContext(ctx).String(), "a primary token wins")
}

func mustToken(t *testing.T, s string) uow.Token {
	t.Helper()
	tok, err := uow.ParseToken(s)
	require.NoError(t, err)
	return tok
}

// TestTokensWithPlainReplicas runs tokens through WithReplicas, which knows
// no replica's position: it asks the replica it picked. The "replica" here is
// another database on a primary, which never reports a replay position.
func TestTokensWithPlainReplicas(t *testing.T) {
	t.Parallel()
	primary, _ := newDB(t)
	replica, _ := newDB(t)
	_, err := replica.Exec(t.Context(), "INSERT INTO items VALUES (99, 'on the replica')")
	require.NoError(t, err)
	u := uow.New(primary, newStore, uow.WithReplicas(replica))
	notes := func(opts ...uow.TxOption) []int {
		got, err := uow.DoResult(t.Context(), u, func(ctx context.Context, q *store) ([]int, error) {
			rows, err := q.db.Query(ctx, "SELECT id FROM items ORDER BY id")
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var ids []int
			for rows.Next() {
				var id int
				if err := rows.Scan(&id); err != nil {
					return nil, err
				}
				ids = append(ids, id)
			}
			return ids, rows.Err()
		}, append(opts, uow.ReadOnly())...)
		require.NoError(t, err)
		return got
	}
	var tok uow.Token
	require.NoError(t, u.Do(t.Context(), func(ctx context.Context, q *store) error { return q.put(ctx, 1, "mine") }, uow.CaptureToken(&tok)))
	require.Equal(t, []int{99}, notes(), "without a token: the replica")
	require.Equal(t, []int{1}, notes(uow.AfterToken(tok)), "a replica that never replays the token: the primary, after the wait")
	require.Equal(t, []int{1}, notes(uow.AfterToken(mustToken(t, "primary"))), "a primary token: the primary")
	requireIdle(t, primary)
	requireIdle(t, replica)
}
