package bench

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startEcho starts a TCP server on loopback that writes back what it reads
// and closes a connection when its client has half-closed it.
func startEcho(t *testing.T) net.Addr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }()
				_, _ = io.Copy(c, c)
			})
		}
	})
	return ln.Addr()
}

func TestDelayProxyAddsTheRoundTripAndKeepsTheBytes(t *testing.T) {
	t.Parallel()
	const rtt = 20 * time.Millisecond
	echo := startEcho(t)
	p, err := newDelayProxy("tcp", echo.String(), rtt)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", p.Addr().String())
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()

	// Ping-pong: every round trip takes at least the delay.
	buf := make([]byte, 1)
	for i := range 5 {
		t0 := time.Now()
		_, err := conn.Write([]byte{byte(i)})
		require.NoError(t, err)
		_, err = io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(t0), rtt, "round trip %d", i)
		require.Equal(t, byte(i), buf[0])
	}

	// A stream in chunks of every size comes back whole and in order while
	// it is still being written.
	want := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	wrote := make(chan error, 1)
	go func() {
		rest := want
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(3*chunkSize))
			if _, err := conn.Write(rest[:n]); err != nil {
				wrote <- err
				return
			}
			rest = rest[n:]
		}
		wrote <- conn.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(conn) // ends when the echo, seeing the half-close through the proxy, closes
	require.NoError(t, err)
	require.NoError(t, <-wrote)
	require.True(t, bytes.Equal(want, got), "got %d bytes back, want the %d written, in order", len(got), len(want))

	chunks, held := p.Stats()
	require.Positive(t, chunks)
	require.GreaterOrEqual(t, held, time.Duration(chunks)*(rtt/2), "every chunk was held for at least half the round trip")

	require.NoError(t, p.Close())
	_, err = net.Dial("tcp", p.Addr().String())
	require.Error(t, err, "a closed proxy accepts nothing")
}

func TestDelayProxyRejectsANegativeDelay(t *testing.T) {
	t.Parallel()
	_, err := newDelayProxy("tcp", "127.0.0.1:1", -time.Millisecond)
	require.EqualError(t, err, "start delay proxy: round-trip delay -1ms: want 0 or more")
}

func TestDelayProxyClosesTheClientWhenTheUpstreamIsDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := ln.Addr().String()
	require.NoError(t, ln.Close())
	p, err := newDelayProxy("tcp", down, time.Millisecond)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	conn, err := net.Dial("tcp", p.Addr().String())
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = conn.Read(make([]byte, 1))
	require.Error(t, err, "the connection ends")
}

func TestProxyChildIsThisExecutableServingTheProxy(t *testing.T) {
	t.Parallel()
	const rtt = 10 * time.Millisecond
	echo := startEcho(t)
	p, err := startProxyChild("tcp", echo.String(), rtt)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", p.Addr().String())
	require.NoError(t, err)
	t0 := time.Now()
	_, err = conn.Write([]byte("ping"))
	require.NoError(t, err)
	got := make([]byte, 4)
	_, err = io.ReadFull(conn, got)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(t0), rtt)
	require.Equal(t, "ping", string(got))
	require.NoError(t, conn.Close())

	chunks, held, err := p.stats()
	require.NoError(t, err)
	require.GreaterOrEqual(t, chunks, int64(2), "one chunk each way")
	require.GreaterOrEqual(t, held, time.Duration(chunks)*(rtt/2))
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "a second Close is a no-op")
}

func TestServeProxyReportsABadSpec(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.Equal(t, 1, serveProxy("1ms tcp", strings.NewReader(""), &out))
	require.Equal(t, "error "+proxyEnv+"=\"1ms tcp\": want \"RTT NETWORK ADDRESS\"\n", out.String())
	out.Reset()
	require.Equal(t, 1, serveProxy("-1ms tcp 127.0.0.1:1", strings.NewReader(""), &out))
	require.Equal(t, "error start delay proxy: round-trip delay -1ms: want 0 or more\n", out.String())
}

func TestServeProxyAnswersStatsUntilItsInputEnds(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan int, 1)
	go func() { served <- serveProxy("0s tcp "+echo.String(), inR, outW) }()
	out := bufio.NewReader(outR)
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	require.Regexp(t, `^listening 127\.0\.0\.1:\d+\n$`, line)
	_, err = io.WriteString(inW, "stats\n")
	require.NoError(t, err)
	line, err = out.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "stats 0 0\n", line)
	require.NoError(t, inW.Close())
	require.Equal(t, 0, <-served)
}

// TestDelayLineHoldsChunksSideBySide drives one direction with a clock that
// moves only when told: chunks read while another is held are held at the
// same time (throughput is not one chunk per delay), each exactly the
// one-way delay, and they leave in order.
func TestDelayLineHoldsChunksSideBySide(t *testing.T) {
	t.Parallel()
	const oneWay = 500 * time.Microsecond
	fc := newFakeClock()
	line := &delayLine{oneWay: oneWay, clock: fc, stop: make(chan struct{})}
	srcClient, srcProxy := net.Pipe()
	dstProxy, dstClient := net.Pipe()
	piped := make(chan struct{})
	go func() {
		defer close(piped)
		line.pipe(dstProxy, srcProxy)
	}()

	// net.Pipe's Write returns once the other side has read it all: each of
	// these returns while the clock stands still and a is held, so the
	// reader took b and c while a was held. Before the clock moves, the
	// reader has stamped all three (nothing else reads the clock until a is
	// due) and the writer sleeps on a.
	for _, s := range []string{"a", "b", "c"} {
		_, err := srcClient.Write([]byte(s))
		require.NoError(t, err)
	}
	fc.waitNowCalls(3)
	fc.waitSleepers(1)
	fc.advance(oneWay - time.Nanosecond)
	require.Equal(t, 1, fc.sleeping(), "a is not due before the one-way delay")
	fc.advance(time.Nanosecond)
	got := make([]byte, 3)
	_, err := io.ReadFull(dstClient, got)
	require.NoError(t, err)
	require.Equal(t, "abc", string(got), "all three due at once, in order")
	chunks, held := line.chunks.Load(), time.Duration(line.held.Load())
	require.Equal(t, int64(3), chunks)
	require.Equal(t, 3*oneWay, held)

	// The end travels behind the data, delayed too; net.Pipe cannot
	// half-close, so the destination is closed.
	require.NoError(t, srcClient.Close())
	fc.waitSleepers(1)
	fc.advance(oneWay)
	_, err = dstClient.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	<-piped
}

// fakeClock is a clock that moves only when advance is called.
type fakeClock struct {
	mu       sync.Mutex
	cond     *sync.Cond
	t        time.Time
	sleepers int // goroutines in sleepUntil whose time has not come
	nowCalls int // calls of now so far
}

func newFakeClock() *fakeClock {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nowCalls++
	c.cond.Broadcast()
	return c.t
}

// waitNowCalls returns once now has been called n times.
func (c *fakeClock) waitNowCalls(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.nowCalls < n {
		c.cond.Wait()
	}
}

func (c *fakeClock) sleepUntil(t time.Time, _ <-chan struct{}) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.After(c.t) {
		return true
	}
	c.sleepers++
	c.cond.Broadcast()
	for t.After(c.t) {
		c.cond.Wait()
	}
	c.sleepers--
	return true
}

// advance moves the clock on by d and wakes the sleepers now due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.cond.Broadcast()
}

// waitSleepers returns once n goroutines sleep on the clock.
func (c *fakeClock) waitSleepers(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.sleepers < n {
		c.cond.Wait()
	}
}

// sleeping returns how many goroutines sleep on the clock.
func (c *fakeClock) sleeping() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sleepers
}
