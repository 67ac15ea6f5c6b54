package dbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// M is what [Main] wraps: a *testing.M, or anything with its Run (goleak's
// VerifyTestMain takes the same).
type M interface {
	Run() int
}

// Main returns m whose Run, once m's tests have run, stops dbtest's
// background work and waits for it: the clones made ahead and the databases
// of [Tx] are dropped (on the server of [DatabaseURLEnv]; a server dbtest
// started goes away with the process), as are the databases of passing tests
// still being dropped. Run then returns m's exit code, or 1 when that work
// failed (the failure printed on stderr). Use it in the TestMain of every
// package that uses dbtest:
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Main(m).Run()) }
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(dbtest.Main(m)) }
//
// Without it nothing breaks, but goroutines of dbtest may still run when the
// tests end, and on the server of DBTEST_DATABASE_URL the databases made
// ahead stay until the next test process sweeps them.
func Main(m M) M { return mainM{m} }

type mainM struct{ m M }

func (r mainM) Run() int {
	code := r.m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// shutdown stops the process's background work, drops what it holds when
// the server outlives the process, and closes its connections.
func shutdown() error {
	p := procState.p
	if p == nil {
		return nil // dbtest was not used, or failed to start
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	templates := p.templates
	p.mu.Unlock()

	var left []string
	for _, tp := range templates {
		if tp.tx != nil {
			tp.tx.pool.Close() // every test, hence every transaction, has ended
			left = append(left, tp.tx.name)
		}
		if tp.supply != nil {
			left = append(left, tp.supply.close()...)
		}
	}
	if p.keep {
		for _, name := range left {
			p.dropLater(name)
		}
	}
	p.work.Wait()
	p.admin.Close()
	var errs []error
	if p.lock != nil {
		errs = append(errs, p.lock.Close(context.Background()))
	}
	p.mu.Lock()
	errs = append(errs, p.dropErr)
	p.mu.Unlock()
	return errors.Join(errs...)
}
