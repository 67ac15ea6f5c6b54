package bench

import (
	"os"
	"testing"

	"github.com/cortexerp/datalayer/dbtest"
)

// TestMain lets the tests start this test binary as a delaying proxy
// (Config.ProxyProcess) and runs them through dbtest.Main.
func TestMain(m *testing.M) {
	ProxyMain()
	os.Exit(dbtest.Main(m).Run())
}
