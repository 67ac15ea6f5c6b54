package migrate_test

import (
	"os"
	"testing"

	"github.com/cortexerp/datalayer/dbtest"
)

// TestMain runs the tests through dbtest.Main, which stops dbtest's
// background work and drops what it made ahead before the process exits.
func TestMain(m *testing.M) { os.Exit(dbtest.Main(m).Run()) }
