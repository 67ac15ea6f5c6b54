package jetstream_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/leakcheck"
)

// TestMain fails the run if a test leaves a goroutine behind (a relay or a
// NATS connection not closed), dbtest's shared server aside.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.Main(m), leakcheck.SharedServer()...)
}
