package bench_test

import (
	"os"
	"testing"

	"github.com/cortexerp/datalayer/bench"
)

// TestMain lets the tests start this test binary as a delaying proxy
// (Config.ProxyProcess).
func TestMain(m *testing.M) {
	bench.ProxyMain()
	os.Exit(m.Run())
}
