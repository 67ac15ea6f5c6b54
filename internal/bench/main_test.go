package bench_test

import (
	"os"
	"testing"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/bench"
)

// TestMain lets the tests start this test binary as a delaying proxy
// (Config.ProxyProcess) and runs them through dbtest.Main.
func TestMain(m *testing.M) {
	bench.ProxyMain()
	os.Exit(dbtest.Main(m).Run())
}
