package provider_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/leakcheck"
)

// TestMain fails the run if a test leaves a goroutine behind (a pool not
// closed, a health check still running), dbtest's process-wide server's
// aside (see leakcheck.SharedServer).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.Main(m), leakcheck.SharedServer()...)
}
