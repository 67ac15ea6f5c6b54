package uow

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/internal/replag"
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
	return replag.FormatLSN(t.lsn)
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
	lsn, err := replag.ParseLSN(s)
	if err != nil {
		return Token{}, fmt.Errorf("uow: ParseToken: %w", err)
	}
	return Token{lsn: lsn}, nil
}

// later returns the later of two tokens; a primary token wins.
func (t Token) later(o Token) Token {
	if o.primary || (!t.primary && o.lsn > t.lsn) {
		return o
	}
	return t
}

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
	err := conn.Conn().QueryRow(cctx, replag.InsertLSNSQL).Scan(&text)
	var lsn uint64
	if err == nil {
		lsn, err = replag.ParseLSN(text)
	}
	if err != nil {
		t.core.cfg.logger.LogAttrs(ctx, slogWarn, "uow: committed, but could not read its WAL position: reads after it go to the primary", attrErr(err))
		*dst = primaryToken
		return
	}
	*dst = Token{lsn: lsn}
}
