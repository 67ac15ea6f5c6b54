// Package leakcheck holds the goleak options of the test binaries that use
// dbtest's process-wide server, so that each TestMain ignores the same
// goroutines, and only those:
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(m, leakcheck.SharedServer()...)
//	}
package leakcheck

import "go.uber.org/goleak"

// The functions of localpg that the goroutines of a running server start in.
// localpg's TestSharedServerGoroutines checks that they still do.
const (
	// postmasterWait waits for the postmaster to exit.
	postmasterWait = "github.com/cortexerp/datalayer/localpg.(*postmaster).launch.func1"
	// signalHandler stops the servers on SIGINT or SIGTERM; it returns when
	// the last server stops.
	signalHandler = "github.com/cortexerp/datalayer/localpg.onSignal"
)

// SharedServer returns the goleak options that ignore exactly the goroutines
// of a localpg server that runs until the process exits: dbtest's
// process-wide server ([dbtest.Server]) is never stopped, by design (localpg's
// watchdog removes it when the test binary exits), so the goroutine waiting
// for its postmaster and localpg's signal handler outlive the tests. Any other
// goroutine left behind (a pool or connection not closed, say) still fails
// the run. The price: a localpg server that a test forgot to stop goes
// unnoticed where these options are used; localpg's own TestMain, which
// verifies without them, catches a Stop that leaves goroutines behind.
//
// [dbtest.Server]: https://pkg.go.dev/github.com/cortexerp/datalayer/dbtest#Server
func SharedServer() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction(postmasterWait),
		goleak.IgnoreTopFunction(signalHandler),
	}
}
