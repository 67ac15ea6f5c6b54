package outbox_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/execmode"
	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

var errAbort = errors.New("abort")

func TestAnEventExistsIfAndOnlyIfItsTransactionCommits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		txOpts []uow.TxOption
		run    func(ctx context.Context, u work) error
		want   []string // payloads left, in id order
	}{
		{"a committed unit of work keeps its event", nil, func(ctx context.Context, u work) error {
			return u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error { return outbox.Publish(ctx, "t", "k", []byte("a")) })
		}, []string{"a"}},
		{"a rolled-back unit of work leaves none", nil, func(ctx context.Context, u work) error {
			_ = u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
				if err := outbox.Publish(ctx, "t", "k", []byte("a")); err != nil {
					return err
				}
				return errAbort
			})
			return nil
		}, nil},
		{"a rolled-back savepoint drops only its own event", nil, func(ctx context.Context, u work) error {
			return u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
				if err := outbox.Publish(ctx, "t", "k", []byte("outer")); err != nil {
					return err
				}
				err := u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
					if err := outbox.Publish(ctx, "t", "k", []byte("inner")); err != nil {
						return err
					}
					return errAbort
				})
				if !errors.Is(err, errAbort) {
					return err
				}
				return outbox.Publish(ctx, "t", "k", []byte("after"))
			})
		}, []string{"outer", "after"}},
		{"a released savepoint's event goes when the outer transaction rolls back", nil, func(ctx context.Context, u work) error {
			_ = u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
				if err := u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
					return outbox.Publish(ctx, "t", "k", []byte("inner"))
				}); err != nil {
					return err
				}
				return errAbort
			})
			return nil
		}, nil},
		{"a batch commits all its events in order", nil, func(ctx context.Context, u work) error {
			return u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
				return outbox.PublishBatch(ctx,
					outbox.Message{Topic: "t", Key: "b", Payload: []byte("1")},
					outbox.Message{Topic: "t", Key: "a", Payload: []byte("2")},
					outbox.Message{Topic: "t", Payload: []byte("3")})
			})
		}, []string{"1", "2", "3"}},
		{"under write-behind the event rides with COMMIT", []uow.TxOption{uow.WriteBehind()}, func(ctx context.Context, u work) error {
			return u.Do(ctx, func(ctx context.Context, _ uow.DBTX) error {
				buf := []byte("wb")
				err := outbox.Publish(ctx, "t", "k", buf)
				copy(buf, "xx") // the caller reuses its buffer before COMMIT
				return err
			}, uow.WriteBehind())
		}, []string{"wb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, u := newDB(t)
			require.NoError(t, tc.run(t.Context(), u))
			var got []string
			for _, r := range rows(t, pool) {
				got = append(got, r.Payload)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestPublishRefusesBadInput(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	require.ErrorIs(t, outbox.Publish(t.Context(), "t", "k", nil), outbox.ErrNoUnitOfWork)
	err := u.Do(t.Context(), func(ctx context.Context, _ uow.DBTX) error {
		return outbox.PublishBatch(ctx, outbox.Message{Topic: " "}, outbox.Message{Topic: "t", Headers: map[string]string{"": "x"}})
	})
	require.EqualError(t, err, "outbox publish: message 0: topic must not be empty\nmessage 1: a header name is empty")
	err = u.Do(t.Context(), func(ctx context.Context, _ uow.DBTX) error {
		return outbox.Publish(ctx, "t", "k", nil, nil)
	})
	require.EqualError(t, err, "outbox publish: option 0 is nil")
	require.Empty(t, rows(t, pool))
}

func TestPublishKeepsHeadersAndAnEmptyPayload(t *testing.T) {
	t.Parallel()
	pool, u := newDB(t)
	require.NoError(t, u.Do(t.Context(), func(ctx context.Context, _ uow.DBTX) error {
		return outbox.Publish(ctx, "t", "k", nil, outbox.WithHeaders(map[string]string{"trace": "abc"}))
	}))
	rec := &recorder{}
	r, err := outbox.NewRelay(pool, rec)
	require.NoError(t, err)
	n, err := r.Drain(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got := rec.got()
	require.Len(t, got, 1)
	require.Equal(t, map[string]string{"trace": "abc"}, got[0].Headers)
	require.Empty(t, got[0].Payload)
	require.Equal(t, 1, got[0].Attempt)
	require.Equal(t, 1, count(t, pool, "state = 'delivered' AND attempts = 1"))
}

func TestPublishAndDeliverInEveryExecMode(t *testing.T) {
	t.Parallel()
	for _, m := range execmode.All() {
		mode := m.Mode
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			cfg, err := pgxpool.ParseConfig(dbtest.NewURL(t, dbtest.WithMigrations(outbox.Migrations())))
			require.NoError(t, err)
			cfg.ConnConfig.DefaultQueryExecMode = mode
			pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			u := uow.New(pool, bindDB)
			payload := []byte("it's \x00 binary, 'quoted' \\ too")
			require.NoError(t, u.Do(t.Context(), func(ctx context.Context, _ uow.DBTX) error {
				return outbox.PublishBatch(ctx,
					outbox.Message{Topic: "t", Key: "k'1", Payload: payload, Headers: map[string]string{"a": `"x"`}},
					outbox.Message{Topic: "t", Key: "k'1", Payload: nil})
			}))
			rec := &recorder{}
			r, err := outbox.NewRelay(pool, rec)
			require.NoError(t, err)
			_, err = r.Drain(t.Context())
			require.NoError(t, err)
			got := rec.got()
			require.Len(t, got, 2)
			require.Equal(t, payload, got[0].Payload)
			require.Equal(t, map[string]string{"a": `"x"`}, got[0].Headers)
			require.Equal(t, "k'1", got[1].Key)
			require.Empty(t, got[1].Payload)
		})
	}
}
