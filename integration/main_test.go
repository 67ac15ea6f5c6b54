package integration

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/leakcheck"
)

// binDir holds the binaries the tests build; TestMain removes it.
var binDir string

// TestMain provides binDir and fails the run if a test leaves a goroutine
// behind, dbtest's process-wide server's aside (see leakcheck.SharedServer).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "integration-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	goleak.VerifyTestMain(dbtest.Main(m), append(leakcheck.SharedServer(), goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}
