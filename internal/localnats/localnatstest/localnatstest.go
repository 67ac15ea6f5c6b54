// Package localnatstest gives a test its own nats-server with JetStream
// (see package localnats), stopped when the test ends.
package localnatstest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cortexerp/datalayer/internal/localnats"
)

// Start starts a nats-server for t and stops it in t.Cleanup. Without a
// nats-server program it skips t, saying what to install, or fails t under
// CI=true, where the test must run.
func Start(t testing.TB) *localnats.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := localnats.Start(ctx)
	if errors.Is(err, localnats.ErrNoBinary) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true: this test must run in CI", err)
		}
		t.Skipf("%v; skipping", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv
}
