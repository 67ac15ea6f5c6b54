package uow_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/leakcheck"
)

// TestMain fails the run if a test leaves a goroutine behind. The examples'
// pool (see pool) lives as long as the run, by design: it is closed once the
// run ends, before goleak looks. The goroutines of the servers that outlive
// the tests (dbtest's and the examples') are ignored: see leakcheck.SharedServer.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.Main(closingExamplePool{m}), leakcheck.SharedServer()...)
}

// closingExamplePool runs the tests and examples, then closes their pool.
type closingExamplePool struct{ m *testing.M }

func (c closingExamplePool) Run() int {
	code := c.m.Run()
	if examplePool != nil {
		examplePool.Close()
		exampleDrop()
	}
	return code
}
