package localpg

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errExited reports a postmaster that exited while we waited for it.
var errExited = errors.New("server exited during start-up")

// waitReady connects to url until a connection succeeds, ctx ends or exited
// (which may be nil) is closed.
func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	delay := 5 * time.Millisecond
	for {
		err := ping(ctx, url)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("wait for the server to accept connections: %w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}
