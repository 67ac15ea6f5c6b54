package jetstream_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/leakcheck"
)

// TestMain fails the run if a test leaves a goroutine behind (a relay or a
// NATS connection not closed), dbtest's shared server aside. With childEnv
// set it is the relay child of a test instead.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		fmt.Fprintln(os.Stderr, relayChild())
		os.Exit(1)
	}
	goleak.VerifyTestMain(dbtest.Main(m), leakcheck.SharedServer()...)
}
