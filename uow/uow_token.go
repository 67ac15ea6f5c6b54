package uow

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Token names a point in the primary's WAL that a committed unit of work
// reached ([CaptureToken]): a replica that has replayed it shows that unit of
// work's writes. Give it to a later ReadOnly unit of work ([AfterToken],
// [ContextWithToken]) to read your own writes from a replica. The zero Token
// asks for nothing. A Token travels as text ([Token.String], [ParseToken]),
// e.g. in a cookie or a header between two requests.
type Token struct {
	lsn     uint64
	primary bool // the position could not be read: read from the primary
}

// primaryToken sends the reads that wait for it to the primary.
var primaryToken = Token{primary: true}

// String returns the WAL position as PostgreSQL writes it ("16/B374D848"),
// "primary" for a token that sends reads to the primary, "" for the zero
// Token.
func (t Token) String() string {
	switch {
	case t.primary:
		return "primary"
	case t.lsn == 0:
		return ""
	}
	return fmt.Sprintf("%X/%X", t.lsn>>32, uint32(t.lsn))
}

// IsZero reports whether t asks for nothing.
func (t Token) IsZero() bool { return t == Token{} }

// MarshalText is String, for encoding/json and friends.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText is ParseToken.
func (t *Token) UnmarshalText(b []byte) error {
	v, err := ParseToken(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// ParseToken reads what [Token.String] wrote.
func ParseToken(s string) (Token, error) {
	switch s {
	case "":
		return Token{}, nil
	case "primary":
		return primaryToken, nil
	}
	lsn, err := parseLSN(s)
	if err != nil {
		return Token{}, fmt.Errorf("uow: ParseToken: %w", err)
	}
	return Token{lsn: lsn}, nil
}

// parseLSN reads a pg_lsn's text form, "16/B374D848".
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if ok {
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if err1 == nil && err2 == nil {
			return h<<32 | l, nil
		}
	}
	return 0, fmt.Errorf("%q is not a WAL position (like 16/B374D848)", s)
}

// later returns the later of two tokens; a primary token wins.
func (t Token) later(o Token) Token {
	if t.primary || o.primary || t.lsn >= o.lsn {
		if o.primary {
			return o
		}
		return t
	}
	return o
}

// tokenSQL reads the server's WAL insert position as a replay position. Read
// after COMMIT on the session that committed, it is at or past the end of
// the commit record (inserted before COMMIT returned, flushed or not), so a
// replica whose replay position reached it shows the transaction. Read inside
// the transaction it would lie before the commit record, which is not enough.
// The insert position of a server whose last record ended at a page boundary
// lies past that page's header, which no replay position (the end of a
// record) ever equals: it is moved back to the boundary (24 bytes for a page
// header, 40 for the first page of a segment), or a read would wait for the
// next record on an idle primary.
const tokenSQL = `SELECT (CASE
	WHEN (l - '0/0'::pg_lsn) % pg_size_bytes(current_setting('wal_segment_size')) = 40 THEN l - 40
	WHEN (l - '0/0'::pg_lsn) % current_setting('wal_block_size')::int = 24 THEN l - 24
	ELSE l END)::text FROM pg_current_wal_insert_lsn() AS l`

// CaptureToken stores in *dst, once the outermost unit of work has committed,
// the [Token] that shows its writes on a replica. It costs one round trip
// after COMMIT, on the same connection. A unit of work that wrote nothing
// (ReadOnly, or one that ran no statement) stores the zero Token; one whose
// position could not be read after it committed stores a token that sends
// the reads waiting for it to the primary. Outermost calls only.
func CaptureToken(dst *Token) TxOption {
	return txOptionFunc(func(o *txOptions) error {
		if dst == nil {
			return errors.New("uow: CaptureToken: dst must not be nil")
		}
		o.captureToken = dst
		return nil
	})
}

// AfterToken makes a ReadOnly outermost unit of work run on a replica only
// once that replica has replayed tok, so that it sees the writes of the unit
// of work tok came from; it waits for one at most ReplicaTokenWait, then runs
// on the primary. With [ContextWithToken] too, the later token counts.
func AfterToken(tok Token) TxOption {
	return txOptionFunc(func(o *txOptions) error {
		o.token = o.token.later(tok)
		return nil
	})
}

type tokenKey struct{}

// ContextWithToken returns ctx carrying tok for the ReadOnly units of work run
// with it, as [AfterToken] does; a token already in ctx is kept if it is later.
func ContextWithToken(ctx context.Context, tok Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, TokenFromContext(ctx).later(tok))
}

// TokenFromContext returns the token ctx carries (zero: none).
func TokenFromContext(ctx context.Context) Token {
	t, _ := ctx.Value(tokenKey{}).(Token)
	return t
}

// captureToken reads the token after t committed on conn; see CaptureToken.
func (t *txn) captureToken(ctx context.Context, conn *pgxpool.Conn) {
	dst := t.opts.captureToken
	if t.opts.readOnly || t.pool != t.core.pool {
		*dst = Token{}
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var text string
	err := conn.Conn().QueryRow(cctx, tokenSQL).Scan(&text)
	var lsn uint64
	if err == nil {
		lsn, err = parseLSN(text)
	}
	if err != nil {
		t.core.cfg.logger.LogAttrs(ctx, slogWarn, "uow: committed, but could not read its WAL position: reads after it go to the primary", attrErr(err))
		*dst = primaryToken
		return
	}
	*dst = Token{lsn: lsn}
}
