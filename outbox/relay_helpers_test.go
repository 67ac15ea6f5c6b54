package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/outbox"
	"github.com/cortexerp/datalayer/uow"
)

// testTimeout bounds every wait of a test.
const testTimeout = 30 * time.Second

// publish commits one event.
func publish(t *testing.T, u work, topic, key, payload string) {
	t.Helper()
	require.NoError(t, u.Do(t.Context(), func(ctx context.Context, _ uow.DBTX) error {
		return outbox.Publish(ctx, topic, key, []byte(payload))
	}))
}

// eventually polls cond until it holds or the test's time is up.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", testTimeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not ordering goroutines
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// runRelay runs r until the test ends.
func runRelay(t *testing.T, r *outbox.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(testTimeout):
			t.Errorf("relay did not stop within %v", testTimeout)
		}
	})
}
