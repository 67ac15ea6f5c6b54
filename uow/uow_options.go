package uow

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
)

// Option configures a UnitOfWork at construction.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	writeBehind   bool
	logger        *slog.Logger
	tracer        trace.Tracer
	maxSavepoints int
	defaultRetry  *RetryPolicy
	replicas      []*pgxpool.Pool
	replicaSet    *ReplicaSet
}

// WithLogger logs retries, rollbacks and commit outcomes at debug and warn
// level. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: logger must not be nil")
		}
		c.logger = l
		return nil
	})
}

// WithTracerProvider records a span per unit of work and per savepoint, with
// its outcome, attempts and depth. The default records nothing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) error {
		if tp == nil {
			return errors.New("WithTracerProvider: provider must not be nil")
		}
		c.tracer = tp.Tracer("github.com/cortexerp/datalayer/uow")
		return nil
	})
}

// WithMaxSavepoints bounds the savepoints one transaction may create
// (default 64, PostgreSQL's subtransaction cache size). Past it, a nested
// call returns ErrTooManySavepoints.
func WithMaxSavepoints(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithMaxSavepoints: must be at least 1, got %d", n)
		}
		c.maxSavepoints = n
		return nil
	})
}

// WithDefaultRetry retries every outermost unit of work with p unless the
// call gives its own Retry option. The default is no retry.
func WithDefaultRetry(p RetryPolicy) Option {
	return optionFunc(func(c *config) error {
		if err := p.validate(); err != nil {
			return fmt.Errorf("WithDefaultRetry: %w", err)
		}
		c.defaultRetry = &p
		return nil
	})
}

// WithWriteBehind makes [WriteBehind] the default of every unit of work.
func WithWriteBehind() Option {
	return optionFunc(func(c *config) error {
		c.writeBehind = true
		return nil
	})
}

// WithReplicas sends outermost ReadOnly units of work to one of the replica
// pools (round robin, skipping a replica that cannot give a connection), and
// to the primary when none can. It knows nothing of the replicas' lag: a
// ReadOnly unit of work given a [Token] asks the replica it picked whether it
// has replayed it, waiting up to [DefaultReplicaTokenWait]. [WithReplicaSet]
// adds a prober, a lag bound and the knobs; the two exclude each other.
func WithReplicas(pools ...*pgxpool.Pool) Option {
	return optionFunc(func(c *config) error {
		for i, p := range pools {
			if p == nil {
				return fmt.Errorf("WithReplicas: replica %d is nil", i)
			}
		}
		c.replicas = append(c.replicas, pools...)
		return nil
	})
}

// WithReplicaSet routes outermost ReadOnly units of work through rs: to a
// replica that is up, within rs's lag bound and, given a [Token], has
// replayed it; else to the primary. rs must have been built for the pool
// given to New; it excludes [WithReplicas]. Several UnitOfWorks may share rs;
// its owner closes it after them.
func WithReplicaSet(rs *ReplicaSet) Option {
	return optionFunc(func(c *config) error {
		if rs == nil {
			return errors.New("WithReplicaSet: set must not be nil")
		}
		c.replicaSet = rs
		return nil
	})
}

// TxOption configures one call of Do or DoResult. Do reports every invalid
// option, and a nil one, before it starts.
type TxOption interface {
	apply(*txOptions) error
}

type txOptionFunc func(*txOptions) error

func (f txOptionFunc) apply(o *txOptions) error { return f(o) }

type txOptions struct {
	isoLevel         pgx.TxIsoLevel
	readOnly         bool
	deferrable       bool
	durable          bool
	retry            *RetryPolicy
	statementTimeout time.Duration
	lockTimeout      time.Duration
	name             string
	writeBehind      bool
	captureToken     *Token // CaptureToken: where to store the token after COMMIT
	token            Token  // AfterToken
}

// Isolation sets the transaction isolation level. Outermost calls only: a
// nested call returns an error wrapping ErrNotOutermost.
func Isolation(level pgx.TxIsoLevel) TxOption { return isolationOption(level) }

// isolationOption and nameOption are values, not closures: given a constant,
// the option costs no allocation.
type isolationOption pgx.TxIsoLevel

func (l isolationOption) apply(o *txOptions) error { o.isoLevel = pgx.TxIsoLevel(l); return nil }

type nameOption string

func (n nameOption) apply(o *txOptions) error { o.name = string(n); return nil }

// ReadOnly makes the unit of work read-only: BEGIN READ ONLY when outermost
// (and eligible for a replica: see [WithReplicas] and [WithReplicaSet]), SET
// TRANSACTION READ ONLY inside the savepoint when nested; the parent is
// read-write again when the nested call ends. A write in it fails with an
// error that says so.
func ReadOnly() TxOption {
	return txOptionFunc(func(o *txOptions) error { o.readOnly = true; return nil })
}

// Deferrable makes a SERIALIZABLE READ ONLY transaction wait for a safe
// snapshot instead of risking serialization failures. Outermost calls only.
func Deferrable() TxOption {
	return txOptionFunc(func(o *txOptions) error { o.deferrable = true; return nil })
}

// Retry replays fn from BEGIN on serialization failures and deadlocks (and the
// SQLSTATEs p adds), following p. Only the outermost call retries; on a nested
// call it is ignored and the failure travels up to the outermost call.
func Retry(p RetryPolicy) TxOption {
	return txOptionFunc(func(o *txOptions) error {
		if err := p.validate(); err != nil {
			return fmt.Errorf("uow: Retry: %w", err)
		}
		o.retry = &p
		return nil
	})
}

// StatementTimeout bounds every statement of the unit of work on the server
// (SET LOCAL statement_timeout).
func StatementTimeout(d time.Duration) TxOption {
	return txOptionFunc(func(o *txOptions) error {
		if d <= 0 {
			return fmt.Errorf("uow: StatementTimeout: must be positive, got %s", d)
		}
		o.statementTimeout = d
		return nil
	})
}

// LockTimeout bounds how long a statement waits for a lock (SET LOCAL
// lock_timeout); past it the statement fails with SQLSTATE 55P03.
func LockTimeout(d time.Duration) TxOption {
	return txOptionFunc(func(o *txOptions) error {
		if d <= 0 {
			return fmt.Errorf("uow: LockTimeout: must be positive, got %s", d)
		}
		o.lockTimeout = d
		return nil
	})
}

// Durable asserts that this call is the outermost unit of work, so that its
// COMMIT really makes the work durable. A nested call returns ErrNotOutermost.
func Durable() TxOption {
	return txOptionFunc(func(o *txOptions) error { o.durable = true; return nil })
}

// WriteBehind defers the statements sqlc generated as :exec (their text
// starts with "-- name: X :exec"): each is queued when called and travels in
// the round trip of the next statement that needs a reply, the end of the
// nested call it belongs to, or COMMIT. A deferred statement's error comes
// back from the call that carried it, wrapped so it names the query, and the
// unit of work rolls back (or retries) as always. Nested, it applies to that
// call and the calls inside it. Nothing else is deferred: :execrows, :one,
// :many, COPY, batches and hand-written SQL run when called.
//
// Arguments are read when the statement is sent, as with a pgx.Batch: do not
// change what a pointer or slice argument refers to until the next statement
// that needs a reply returns.
func WriteBehind() TxOption {
	return txOptionFunc(func(o *txOptions) error { o.writeBehind = true; return nil })
}

// Name names the unit of work in spans and log lines.
func Name(name string) TxOption { return nameOption(name) }
