//go:build unix

package localpg

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// tracked holds the servers started from binaries that a SIGINT or SIGTERM
// must stop; the handler is installed only while there are some.
var tracked struct {
	sync.Mutex
	servers map[*Server]struct{}
	sigs    chan os.Signal
}

func track(s *Server) {
	tracked.Lock()
	defer tracked.Unlock()
	if tracked.servers == nil {
		tracked.servers = map[*Server]struct{}{}
	}
	tracked.servers[s] = struct{}{}
	if tracked.sigs == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		tracked.sigs = ch
		go onSignal(ch)
	}
}

func untrack(s *Server) {
	tracked.Lock()
	defer tracked.Unlock()
	delete(tracked.servers, s)
	if len(tracked.servers) == 0 && tracked.sigs != nil {
		signal.Stop(tracked.sigs)
		close(tracked.sigs)
		tracked.sigs = nil
	}
}

// onSignal stops the tracked servers on the first signal, then lets the
// signal take its normal effect (usually: the process dies of it).
// internal/leakcheck names it (TestSharedServerGoroutines checks the name).
func onSignal(ch chan os.Signal) {
	sig, ok := <-ch
	if !ok {
		return
	}
	tracked.Lock()
	servers := make([]*Server, 0, len(tracked.servers))
	for s := range tracked.servers {
		servers = append(servers, s)
	}
	tracked.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { _ = s.Stop(ctx) })
	}
	wg.Wait()

	signal.Stop(ch)
	tracked.Lock()
	if tracked.sigs == ch {
		tracked.sigs = nil
	}
	tracked.Unlock()
	_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
}
