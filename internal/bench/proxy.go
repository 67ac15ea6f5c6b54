package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// delayProxy forwards the TCP connections made to a listener on 127.0.0.1
// to an upstream address, holding every chunk it reads for half the
// round-trip delay before writing it on: a round trip through it takes at
// least that delay longer. It adds latency, not a bandwidth cap: each
// direction of a connection has a reader that stamps every chunk with the
// time it is due and queues it, and a writer that waits for each chunk's due
// time, so that a chunk read while another is held is held at the same time,
// not after it. The kernel's netem would do this more faithfully, but needs
// privileges and slows every other loopback user.
//
// A delayProxy is safe for concurrent use; Close stops it.
type delayProxy struct {
	ln                net.Listener
	network, upstream string
	line              *delayLine
	stop              chan struct{}

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// newDelayProxy listens on a free port of 127.0.0.1 and forwards to
// upstream (network "tcp" or "unix"), adding rtt to every round trip.
func newDelayProxy(network, upstream string, rtt time.Duration) (*delayProxy, error) {
	return newDelayProxyClock(network, upstream, rtt, realClock{})
}

func newDelayProxyClock(network, upstream string, rtt time.Duration, c clock) (*delayProxy, error) {
	if rtt < 0 {
		return nil, fmt.Errorf("start delay proxy: round-trip delay %v: want 0 or more", rtt)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start delay proxy: %w", err)
	}
	stop := make(chan struct{})
	p := &delayProxy{
		ln: ln, network: network, upstream: upstream, stop: stop,
		line:  &delayLine{oneWay: rtt / 2, clock: c, stop: stop},
		conns: map[net.Conn]struct{}{},
	}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the address clients connect to.
func (p *delayProxy) Addr() *net.TCPAddr { return p.ln.Addr().(*net.TCPAddr) }

// Stats returns the chunks forwarded so far and the time they were held,
// summed: held/chunks is the one-way delay the proxy really added.
func (p *delayProxy) Stats() (chunks int64, held time.Duration) {
	return p.line.chunks.Load(), time.Duration(p.line.held.Load())
}

// Close stops accepting, drops every connection (chunks still held are not
// delivered) and waits for the proxy's goroutines.
func (p *delayProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stop)
	err := p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// track registers c to be closed by Close; false when the proxy is closed.
func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *delayProxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(down) {
			_ = down.Close()
			return
		}
		p.wg.Go(func() { p.serve(down) })
	}
}

// serve connects down to the upstream and pipes both ways until both
// directions have ended.
func (p *delayProxy) serve(down net.Conn) {
	defer p.untrack(down)
	up, err := net.Dial(p.network, p.upstream)
	if err != nil {
		return // the client sees its connection closed, as with a server that is down
	}
	if !p.track(up) {
		_ = up.Close()
		return
	}
	defer p.untrack(up)
	var wg sync.WaitGroup
	wg.Go(func() { p.line.pipe(up, down) })
	wg.Go(func() { p.line.pipe(down, up) })
	wg.Wait()
}

// chunkSize is the most one read takes from a connection.
const chunkSize = 32 << 10

// queueLen is how many chunks one direction holds at most; past it the
// reader waits, as a full network path would make the sender wait.
const queueLen = 256

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// chunk is what one read returned, due to be written at due. A chunk
// without data ends the direction: err is io.EOF for an orderly end (the
// writer half-closes its side), anything else for a broken connection.
type chunk struct {
	due  time.Time
	read time.Time
	buf  *[]byte
	data []byte
	err  error
}

// delayLine delays one proxy's chunks. Safe for concurrent use.
type delayLine struct {
	oneWay time.Duration
	clock  clock
	stop   <-chan struct{} // closed: stop waiting, drop what is held

	chunks atomic.Int64 // chunks written
	held   atomic.Int64 // nanoseconds between read and write, summed
}

// pipe copies src to dst, each chunk delayed by oneWay, until src ends
// (then, once the chunks before have been written, dst is half-closed) or
// either side fails (both are closed). It returns when both its reader and
// its writer have finished.
func (d *delayLine) pipe(dst, src net.Conn) {
	q := make(chan chunk, queueLen)
	written := make(chan struct{})
	go func() {
		defer close(written)
		d.write(dst, src, q)
	}()
	send := func(c chunk) {
		select {
		case q <- c:
		case <-written: // the writer gave up and closed src: the next read fails
			if c.buf != nil {
				chunkPool.Put(c.buf)
			}
		}
	}
	for {
		bp := chunkPool.Get().(*[]byte)
		n, err := src.Read(*bp)
		now := d.clock.now()
		if n > 0 {
			send(chunk{due: now.Add(d.oneWay), read: now, buf: bp, data: (*bp)[:n]})
		} else {
			chunkPool.Put(bp)
		}
		if err != nil {
			send(chunk{due: now.Add(d.oneWay), read: now, err: err})
			close(q)
			<-written
			return
		}
	}
}

// write writes each chunk of q to dst when it is due.
func (d *delayLine) write(dst, src net.Conn, q <-chan chunk) {
	fail := func() {
		_ = dst.Close()
		_ = src.Close()
		for c := range q { // until the reader, seeing src closed, closes q
			if c.buf != nil {
				chunkPool.Put(c.buf)
			}
		}
	}
	for c := range q {
		if !d.clock.sleepUntil(c.due, d.stop) {
			if c.buf != nil {
				chunkPool.Put(c.buf)
			}
			fail()
			return
		}
		if c.data == nil {
			if errors.Is(c.err, io.EOF) {
				if hc, ok := dst.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
					continue // the reader closes q next
				}
			}
			_ = dst.Close()
			continue
		}
		d.held.Add(int64(d.clock.now().Sub(c.read)))
		d.chunks.Add(1)
		_, err := dst.Write(c.data)
		chunkPool.Put(c.buf)
		if err != nil {
			fail()
			return
		}
	}
}

// clock is the time a delayLine waits by: the real one, or a test's.
type clock interface {
	now() time.Time
	// sleepUntil returns at t (true) or when stop is closed (false).
	sleepUntil(t time.Time, stop <-chan struct{}) bool
}

// realClock waits precisely: the Go runtime's timers fire up to a
// millisecond late when the process is idle (its poller sleeps in whole
// milliseconds), which would double a 1 ms round trip, so the last
// stretch of a wait is a nanosleep where the platform has one (see
// preciseSleep).
type realClock struct{}

// coarseWait is the part of a wait left to preciseSleep; what comes before
// it is a runtime timer, which Close can interrupt.
const coarseWait = 2 * time.Millisecond

func (realClock) now() time.Time { return time.Now() }

func (realClock) sleepUntil(t time.Time, stop <-chan struct{}) bool {
	for {
		select {
		case <-stop:
			return false
		default:
		}
		w := time.Until(t)
		if w <= 0 {
			return true
		}
		if w <= coarseWait {
			preciseSleep(w)
			continue
		}
		tm := time.NewTimer(w - coarseWait)
		select {
		case <-tm.C:
		case <-stop:
			tm.Stop()
			return false
		}
	}
}
