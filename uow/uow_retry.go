package uow

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// RetryPolicy says when and how often an outermost unit of work is replayed.
// Serialization failures (40001) and deadlocks (40P01) are always retryable,
// as is ErrCommitAborted; Codes adds SQLSTATEs. ErrCommitUnknown is never
// retried, whatever Codes say. The delay before attempt n+1
// is drawn uniformly from [0, min(MaxDelay, BaseDelay·2^(n-1))] ("full
// jitter"), and no attempt starts past Budget or the ctx deadline.
type RetryPolicy struct {
	// MaxAttempts counts the first try; at least 1.
	MaxAttempts int
	// BaseDelay is the backoff ceiling after the first failure.
	BaseDelay time.Duration
	// MaxDelay caps the backoff ceiling.
	MaxDelay time.Duration
	// Budget bounds the total time spent across attempts (0: no bound but ctx).
	Budget time.Duration
	// Codes are extra SQLSTATEs to retry, e.g. pgerrcode.LockNotAvailable.
	Codes []string
	// ConnLost retries an attempt whose connection broke (a network error, a
	// FATAL such as 57P01 from pg_terminate_backend or a restart) or could
	// not be had, before COMMIT was sent: the server then rolled it back, so
	// replaying cannot apply the work twice. A connection lost while COMMIT
	// is in flight is never retried this way (see [ErrCommitUnknown]).
	ConnLost bool
}

// DefaultRetry is a policy fit for OLTP work: up to 5 attempts, 5 ms base,
// 500 ms cap, 5 s total.
var DefaultRetry = RetryPolicy{MaxAttempts: 5, BaseDelay: 5 * time.Millisecond, MaxDelay: 500 * time.Millisecond, Budget: 5 * time.Second}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("MaxAttempts must be at least 1, got %d", p.MaxAttempts)
	case p.BaseDelay < 0 || p.MaxDelay < 0 || p.Budget < 0:
		return errors.New("BaseDelay, MaxDelay and Budget must not be negative")
	}
	return nil
}

// retryable reports whether err may succeed if the whole unit of work runs again.
// ErrCommitUnknown never is, whatever Codes say: the work may have landed.
func (p RetryPolicy) retryable(err error) bool {
	switch {
	case errors.Is(err, ErrCommitUnknown):
		return false
	case errors.Is(err, ErrCommitAborted):
		return true
	}
	code := sqlState(err)
	return code != "" && (slices.Contains(retryableCodes, code) || slices.Contains(p.Codes, code))
}

// backoff returns the delay before the attempt after `attempt`.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	ceiling := p.BaseDelay << min(attempt-1, 30)
	if p.MaxDelay > 0 && (ceiling > p.MaxDelay || ceiling <= 0) {
		ceiling = p.MaxDelay
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// wait sleeps before the next attempt. It reports false when the attempts,
// the budget or ctx leave no room for another try.
func (p RetryPolicy) wait(ctx context.Context, attempt int, started time.Time) bool {
	if attempt >= p.MaxAttempts {
		return false
	}
	d := p.backoff(attempt)
	if p.Budget > 0 && time.Since(started)+d >= p.Budget {
		return false
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return false
	}
	if d == 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Attempt reports which try of the outermost unit of work in ctx is running:
// 1 on the first, 2 on the first retry; 0 outside a unit of work.
func Attempt(ctx context.Context) int {
	if l := anyLevel(ctx); l != nil {
		return l.tx.attempt
	}
	return 0
}
