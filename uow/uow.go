package uow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DBTX is what a unit of work hands to typed queries: the query methods of
// pgx v5, a superset of the interface sqlc generates, so anything built on a
// DBTX works with dbgen.New.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

var (
	_ DBTX = (*handle)(nil)
	_ DBTX = (*pgxpool.Pool)(nil)
)

// UnitOfWork runs functions inside transactions of one pool and hands them
// typed queries (Q, e.g. *dbgen.Queries) bound to that transaction.
//
// A UnitOfWork is safe for concurrent use: each outermost Do has its own
// transaction. The handles given to one fn must be used by one goroutine at a
// time (see ErrConcurrentUse).
type UnitOfWork[Q any] struct {
	core
	bind   func(DBTX) Q
	poolQ  Q
	poolDB *handle
}

// core is the part of a unit of work that does not depend on Q.
type core struct {
	pool     *pgxpool.Pool
	cfg      config
	prepares bool // the pool's exec mode prepares new statements in a round trip of their own
	simple   bool // the pool's exec mode is simple_protocol: a batch is one query message
	known    knownStatements
	replicas *ReplicaSet // nil without WithReplicas or WithReplicaSet
}

// New returns a UnitOfWork over pool that binds handles with bind, typically
// the New function sqlc generates: uow.New(pool, dbgen.New).
//
// New panics when pool or bind is nil, when an option is invalid, or when D
// is not satisfied by the unit of work's handle (a DBTX): these are
// programming errors, caught at start-up.
func New[Q any, D any](pool *pgxpool.Pool, bind func(D) Q, opts ...Option) *UnitOfWork[Q] {
	if pool == nil {
		panic("uow.New: pool must not be nil")
	}
	if bind == nil {
		panic("uow.New: bind must not be nil (pass the constructor sqlc generates, e.g. dbgen.New)")
	}
	var h any = (*handle)(nil)
	if _, ok := h.(D); !ok {
		panic(fmt.Sprintf("uow.New: bind takes %T, which uow.DBTX does not satisfy: bind must accept an interface with a subset of DBTX's methods", *new(D)))
	}
	u := &UnitOfWork[Q]{
		bind: func(db DBTX) Q { return bind(any(db).(D)) },
	}
	u.pool = pool
	u.cfg = config{maxSavepoints: 64, logger: slog.New(slog.DiscardHandler)}
	for i, o := range opts {
		if o == nil {
			panic(fmt.Sprintf("uow.New: option %d is nil", i))
		}
		if err := o.apply(&u.cfg); err != nil {
			panic("uow.New: " + err.Error())
		}
	}
	switch {
	case u.cfg.replicaSet != nil && len(u.cfg.replicas) > 0:
		panic("uow.New: WithReplicas and WithReplicaSet exclude each other: give the replicas to NewReplicaSet")
	case u.cfg.replicaSet != nil && u.cfg.replicaSet.primary != pool:
		panic("uow.New: WithReplicaSet: the set was built for another primary than the pool given to New")
	case u.cfg.replicaSet != nil:
		u.replicas = u.cfg.replicaSet
	case len(u.cfg.replicas) > 0:
		u.replicas = newReplicaSet(pool, u.cfg.replicas, replicaConfig{tokenWait: DefaultReplicaTokenWait})
	}
	switch pool.Config().ConnConfig.DefaultQueryExecMode {
	case pgx.QueryExecModeExec:
	case pgx.QueryExecModeSimpleProtocol:
		u.simple = true
	default:
		u.prepares = true
	}
	u.poolDB = &handle{pool: pool, c: &u.core}
	u.poolQ = u.bind(u.poolDB)
	return u
}

// Do runs fn in a unit of work and returns fn's error.
//
// Outermost (ctx carries no unit of work of this pool): fn runs in a
// transaction on one pooled connection, committed when fn returns nil and
// rolled back otherwise; with Retry, fn is replayed from BEGIN on
// serialization failures and deadlocks. BEGIN travels with fn's first
// statement, and a fn that runs no statement costs no round trip.
//
// Nested (ctx comes from an enclosing fn): fn runs inside a savepoint, created
// when fn runs its first statement. fn's error rolls back only the savepoint;
// the enclosing fn may handle it and go on. A panic in fn rolls back the whole
// transaction, returns the connection to the pool and re-panics.
func (u *UnitOfWork[Q]) Do(ctx context.Context, fn func(ctx context.Context, q Q) error, opts ...TxOption) error {
	var o txOptions
	if len(opts) > 0 {
		po := new(txOptions) // an option may keep the pointer: only then allocate
		var errs []error
		for i, opt := range opts {
			if opt == nil {
				errs = append(errs, fmt.Errorf("uow: TxOption %d is nil", i))
				continue
			}
			if err := opt.apply(po); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		o = *po
	}
	if parent := levelOf(ctx, u.pool); parent != nil {
		return u.doNested(ctx, parent, fn, &o)
	}
	return u.doOutermost(ctx, fn, &o)
}

// DoResult is Do for a fn that returns a value, returned when fn succeeds and
// the unit of work commits (on a retry, the last attempt's value).
func DoResult[Q, T any](ctx context.Context, u *UnitOfWork[Q], fn func(ctx context.Context, q Q) (T, error), opts ...TxOption) (T, error) {
	var result T
	err := u.Do(ctx, func(ctx context.Context, q Q) error {
		var err error
		result, err = fn(ctx, q)
		return err
	}, opts...)
	if err != nil {
		var zero T
		return zero, err
	}
	return result, nil
}

// Queries returns the typed queries bound to the innermost unit of work of
// this pool in ctx, or to the pool itself (each statement on its own) when
// ctx carries none. Repository code written against it works in and out of
// a transaction.
func (u *UnitOfWork[Q]) Queries(ctx context.Context) Q {
	if l := levelOf(ctx, u.pool); l != nil {
		return u.boundTo(l)
	}
	return u.poolQ
}

// DB is Queries for hand-written SQL: the DBTX of the innermost unit of work
// of this pool in ctx, or one that runs each statement on the pool.
func (u *UnitOfWork[Q]) DB(ctx context.Context) DBTX {
	if l := levelOf(ctx, u.pool); l != nil {
		return l.db
	}
	return u.poolDB
}

// boundTo returns Q bound to level l, binding it once per level.
func (u *UnitOfWork[Q]) boundTo(l *level) Q {
	if q, ok := l.q.(Q); ok && l.qOwner == u {
		return q
	}
	q := u.bind(l.db)
	l.q, l.qOwner = q, u
	return q
}

// knownStatements remembers SQL that ran successfully on this pool. In the
// exec modes that prepare a new statement in a round trip of its own, and in
// simple_protocol, only such SQL may travel in one batch behind a lazy
// SAVEPOINT: a statement that fails to prepare (or, in simple_protocol, to
// parse) would abort the transaction before the SAVEPOINT ran.
type knownStatements struct {
	m sync.Map
	n atomic.Int64
}

const maxKnownStatements = 4096

func (k *knownStatements) has(sql string) bool {
	_, ok := k.m.Load(sql)
	return ok
}

func (k *knownStatements) add(sql string) {
	if k.n.Load() >= maxKnownStatements {
		return
	}
	if _, loaded := k.m.LoadOrStore(sql, struct{}{}); !loaded {
		k.n.Add(1)
	}
}
