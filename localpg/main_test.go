package localpg_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: every server a
// test starts is stopped, and with it the goroutines that watch it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
