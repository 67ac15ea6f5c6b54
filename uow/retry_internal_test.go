package uow

import (
	"context"
	"testing"
	"time"
)

// TestRetryWaitRespectsTheDeadline checks the rule the retry loop follows,
// without a clock race: no wait is started that would end past the ctx
// deadline, the budget or the attempts. (Room left: a zero backoff, so the
// wait returns at once.)
func TestRetryWaitRespectsTheDeadline(t *testing.T) {
	t.Parallel()
	far, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	now := time.Now()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		p       RetryPolicy
		attempt int
		started time.Time
		want    bool
	}{
		{"room left", far, RetryPolicy{MaxAttempts: 3}, 1, now, true},
		{"deadline passed", past, RetryPolicy{MaxAttempts: 3}, 1, now, false},
		{"attempts used up", far, RetryPolicy{MaxAttempts: 3}, 3, now, false},
		{"budget spent", far, RetryPolicy{MaxAttempts: 3, Budget: time.Second}, 1, now.Add(-2 * time.Second), false},
	} {
		if got := tc.p.wait(tc.ctx, tc.attempt, tc.started); got != tc.want {
			t.Errorf("%s: wait = %v, want %v", tc.name, got, tc.want)
		}
	}
}
