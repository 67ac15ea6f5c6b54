package uow_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/execmode"
	"github.com/cortexerp/datalayer/uow"
)

// execModes are the five pgx exec modes (internal/execmode's list) by name;
// faults are tried in each where the mode changes what goes over the wire.
var execModes = func() map[string]pgx.QueryExecMode {
	modes := map[string]pgx.QueryExecMode{}
	for _, m := range execmode.All() {
		modes[m.Name] = m.Mode
	}
	return modes
}()

// cut says where an injector ends the session around the next COMMIT.
type cut int

const (
	// cutBeforeWrite closes the connection instead of writing COMMIT.
	cutBeforeWrite cut = iota + 1
	// cutAfterWrite writes COMMIT, then closes before reading the reply.
	cutAfterWrite
	// cutReplyLost lets the reply through up to, not including, the COMMIT
	// tag, then closes: the server committed, the client never heard.
	cutReplyLost
	// cutFatalAfterTag lets the COMMIT tag through, then sends a FATAL 57P01
	// in the server's name and closes, as a terminated backend does.
	cutFatalAfterTag
	// cutEOFAfterTag lets the COMMIT tag through, then closes.
	cutEOFAfterTag
)

func (c cut) String() string {
	return [...]string{"", "before COMMIT is written", "after COMMIT is written, before the reply",
		"the reply lost before the COMMIT tag", "FATAL 57P01 after the COMMIT tag", "EOF after the COMMIT tag"}[c]
}

// injector ends the session of the next write on a pool's connections, at
// the point armed.
type injector struct {
	mu          sync.Mutex
	armed       cut
	fired       chan struct{} // closed when the armed fault happened
	dropCancels bool          // after a cut: the network is gone for pgx's cancel request too
}

// cancelRequestCode starts a CancelRequest message, which pgx sends on a
// connection of its own when it abandons one (it would cancel the COMMIT the
// server is about to run).
const cancelRequestCode = 80877102

// arm makes the next write (the COMMIT, when fn arms it last) the fault's.
func (in *injector) arm(c cut) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.armed = c
	in.fired = make(chan struct{})
	in.dropCancels = false
}

// wrap returns dial with every connection watched by in.
func (in *injector) wrap(dial pgconn.DialFunc) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &faultConn{Conn: c, in: in}, nil
	}
}

// faultConn is a client connection whose reads an injector may rewrite.
type faultConn struct {
	net.Conn
	in *injector

	mode    atomic.Int32 // the cut armed on this connection (pgx reads while it writes)
	pending []byte       // server bytes not yet split into messages
	out     []byte       // whole messages for the reader
	ended   bool         // the fault closed the session: EOF after out
}

func (c *faultConn) Write(b []byte) (int, error) {
	c.in.mu.Lock()
	armed, fired, dropCancels := c.in.armed, c.in.fired, c.in.dropCancels
	c.in.armed = 0
	if armed == cutAfterWrite {
		c.in.dropCancels = true
	}
	c.in.mu.Unlock()
	if dropCancels && len(b) == 16 && binary.BigEndian.Uint32(b[4:8]) == cancelRequestCode {
		_ = c.Conn.Close()
		return 0, net.ErrClosed
	}
	if armed == 0 {
		return c.Conn.Write(b)
	}
	c.mode.Store(int32(armed)) // before the write: a read may already wait for its reply
	switch armed {
	case cutBeforeWrite:
		_ = c.Conn.Close()
		close(fired)
		return 0, net.ErrClosed
	case cutAfterWrite:
		n, err := c.Conn.Write(b)
		// A FIN behind the data, not a close: closing a socket with unread
		// data sends a reset, which can make the server drop the COMMIT
		// it has not read yet. The server reads it, runs it, then sees EOF.
		closeWrite(c.Conn)
		close(fired)
		return n, err
	}
	return c.Conn.Write(b)
}

func (c *faultConn) Read(b []byte) (int, error) {
	switch cut(c.mode.Load()) {
	case 0:
		n, err := c.Conn.Read(b)
		if n > 0 && c.mode.Load() != 0 {
			// A read that was waiting when the fault was armed: the data
			// answers the armed write, so it goes through the fault too.
			c.pending = append(c.pending, b[:n]...)
			return c.Read(b)
		}
		return n, err
	case cutBeforeWrite, cutAfterWrite:
		return 0, net.ErrClosed // nothing after the cut reaches the client
	}
	// What a read waiting when the fault was armed took in may already hold
	// the reply: split it before waiting for more, which may never come.
	c.split()
	for len(c.out) == 0 {
		if c.ended {
			return 0, io.EOF
		}
		buf := make([]byte, 8192)
		n, err := c.Conn.Read(buf)
		c.pending = append(c.pending, buf[:n]...)
		c.split()
		if err != nil && len(c.out) == 0 && !c.ended {
			return 0, err
		}
	}
	n := copy(b, c.out)
	c.out = c.out[n:]
	return n, nil
}

// split moves whole server messages from pending to out, rewriting the
// stream at the COMMIT tag.
func (c *faultConn) split() {
	for !c.ended && len(c.pending) >= 5 {
		size := 1 + int(binary.BigEndian.Uint32(c.pending[1:5]))
		if len(c.pending) < size {
			return
		}
		msg := c.pending[:size]
		c.pending = c.pending[size:]
		if msg[0] == 'C' && string(msg[5:]) == "COMMIT\x00" {
			switch cut(c.mode.Load()) {
			case cutFatalAfterTag:
				c.out = append(c.out, msg...)
				c.out = append(c.out, fatalTerminated()...)
			case cutEOFAfterTag:
				c.out = append(c.out, msg...)
			}
			c.ended = true
			_ = c.Conn.Close()
			c.in.mu.Lock()
			close(c.in.fired)
			c.in.mu.Unlock()
			return
		}
		c.out = append(c.out, msg...)
	}
}

// closeWrite half-closes c (a FIN after what was written).
func closeWrite(c net.Conn) {
	if w, ok := c.(*wireConn); ok {
		c = w.Conn
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// fatalTerminated is the ErrorResponse a backend sends when
// pg_terminate_backend ends it.
func fatalTerminated() []byte {
	var body []byte
	for _, f := range [][2]string{{"S", "FATAL"}, {"V", "FATAL"}, {"C", "57P01"}, {"M", "terminating connection due to administrator command"}} {
		body = append(body, f[0][0])
		body = append(body, f[1]...)
		body = append(body, 0)
	}
	body = append(body, 0)
	msg := []byte{'E', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(msg[1:], uint32(4+len(body)))
	return append(msg, body...)
}

// newFaultDB is newDBWith plus an injector on the pool's connections and an
// applied table with no key: a unit of work applied twice shows as two rows.
func newFaultDB(t testing.TB, adjust func(*pgxpool.Config)) (*pgxpool.Pool, *wire, *injector) {
	t.Helper()
	in := &injector{}
	pool, w := newDBWith(t, func(c *pgxpool.Config) {
		c.ConnConfig.DialFunc = in.wrap(c.ConnConfig.DialFunc)
		if adjust != nil {
			adjust(c)
		}
	})
	_, err := pool.Exec(t.Context(), "CREATE TABLE applied (k text NOT NULL)")
	require.NoError(t, err)
	return pool, w, in
}

// apply records key k in applied.
func (s *store) apply(ctx context.Context, k string) error {
	_, err := s.db.Exec(ctx, "INSERT INTO applied (k) VALUES ($1)", k)
	return err
}

// backendGone waits until the server no longer lists backend pid.
func backendGone(t testing.TB, pool *pgxpool.Pool, pid uint32) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n)
		return err == nil && n == 0
	}, 10*time.Second, 5*time.Millisecond, "backend %d still listed", pid)
}

// applied returns how many times each key was applied.
func appliedKeys(t testing.TB, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.WithoutCancel(t.Context()), "SELECT k, count(*) FROM applied GROUP BY k")
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kv struct {
		k string
		n int
	}, err error) {
		err = r.Scan(&kv.k, &kv.n)
		return kv, err
	})
	require.NoError(t, err)
	m := make(map[string]int, len(out))
	for _, kv := range out {
		m[kv.k] = kv.n
	}
	return m
}

// retryOpts is Retry(*p), or no option for a nil p.
func retryOpts(p *uow.RetryPolicy) []uow.TxOption {
	if p == nil {
		return nil
	}
	return []uow.TxOption{uow.Retry(*p)}
}
