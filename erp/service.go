package erp

import (
	"context"
	"errors"
	"sync/atomic"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/uow"
)

// Service is the ERP application: every method is one unit of work on the
// pool it was built with. It is safe for concurrent use.
type Service struct {
	uow     *uow.UnitOfWork[*dbgen.Queries]
	pool    *pgxpool.Pool
	retries atomic.Int64
}

// New returns a Service over pool; opts configure its unit of work
// (uow.WithLogger, uow.WithTracerProvider, …) and, as in uow.New, an invalid
// one panics. Its units of work write behind (uow.WithWriteBehind): the
// :exec statements, the outbox's events among them, ride with the next round
// trip or COMMIT.
func New(pool *pgxpool.Pool, opts ...uow.Option) (*Service, error) {
	if pool == nil {
		return nil, errors.New("new erp service: pool must not be nil")
	}
	return &Service{
		uow:  uow.New(pool, dbgen.New, append([]uow.Option{uow.WithWriteBehind()}, opts...)...),
		pool: pool,
	}, nil
}

// Retries reports how many attempts the service's units of work have
// replayed (after a serialization failure or a deadlock) since New.
func (s *Service) Retries() int64 { return s.retries.Load() }

// RegisterTypes registers the binary codec of shopspring decimals for numeric
// on conn. It is optional (decimals also travel as text); pass it to
// provider.WithAfterConnect or use it as pgxpool.Config.AfterConnect.
func RegisterTypes(_ context.Context, conn *pgx.Conn) error {
	pgxdecimal.Register(conn.TypeMap())
	return nil
}

// countAttempt counts a replayed attempt of the unit of work in ctx.
func (s *Service) countAttempt(ctx context.Context) {
	if uow.Attempt(ctx) > 1 {
		s.retries.Add(1)
	}
}

// execBatch runs a :batchexec batch and returns its first error.
func execBatch(b interface{ Exec(func(int, error)) }) error {
	var first error
	b.Exec(func(_ int, err error) {
		if first == nil {
			first = err
		}
	})
	return first
}
