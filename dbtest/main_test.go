package dbtest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/leakcheck"
)

// TestMain runs the tests through dbtest.Main, which stops dbtest's
// background work, and fails the run if a test leaves a goroutine behind,
// the process-wide server's aside (see leakcheck.SharedServer).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.Main(m), leakcheck.SharedServer()...)
}
