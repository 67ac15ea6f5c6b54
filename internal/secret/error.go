package secret

import (
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Error returns err with the password positions of its text masked (see
// [Text]; a pgconn.ParseConfigError's connection string is rendered by
// [Redact], and its reason loses what it quotes when the string was too
// malformed to tell where the password was), and with params, the values of
// a statement's parameters, masked wherever they appear ([MaskValues]: a
// server message can quote one). A password is never one of params: pgx's
// errors do not contain it, except in a connection string.
//
// The result unwraps to err's chain without the errors that hold a password
// (pgconn.ConnectError and its Config, pgconn.ParseConfigError and its
// ConnString), so that errors.Is and errors.As still find a *pgconn.PgError,
// a net error, a context error or a sentinel. %v, %+v, %#v and %s print the
// masked text. Error(nil) is nil.
func Error(err error, params ...string) error {
	if err == nil {
		return nil
	}
	msg := Text(err.Error())
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		full, t := err.Error(), pce.Error()
		if i := strings.LastIndex(full, t); i >= 0 {
			// The rendering is safe as it is; Text masks what is around it.
			msg = Text(full[:i]) + parseError(pce) + Text(full[i+len(t):])
		}
	}
	msg = MaskValues(msg, params)
	return &scrubbed{msg: msg, cause: safe(err)}
}

// scrubbed is an error whose text has been masked.
type scrubbed struct {
	msg   string
	cause error
}

func (e *scrubbed) Error() string    { return e.msg }
func (e *scrubbed) Unwrap() error    { return e.cause }
func (e *scrubbed) GoString() string { return e.msg }

// parseError renders a ParseConfigError from its parts: the connection
// string redacted, then pgx's reason.
func parseError(pce *pgconn.ParseConfigError) string {
	red, exact := redact(pce.ConnString)
	// pgx's text is "cannot parse `<its redaction>`: <reason>"; an error of
	// its own making with an empty reason tells the prefix exactly.
	prefix := pgconn.NewParseConfigError(pce.ConnString, "", nil).Error()
	reason, ok := strings.CutPrefix(pce.Error(), prefix)
	if !ok {
		reason = "invalid connection string"
	}
	if !exact && red != pce.ConnString {
		// Too malformed to tell where its password ends: a quoted piece of
		// it may be part of the password (postgres://u:pa/ss%zz@h reads
		// "ss%zz@h" as the database name).
		reason = maskQuoted(reason)
	}
	return "cannot parse `" + red + "`: " + reason
}

// maskQuoted masks what stands between double quotes, reading \" inside
// them as Go's %q writes it.
func maskQuoted(s string) string {
	var spans []span
	for i := 0; i < len(s); i++ {
		if s[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		j = min(j, len(s))
		spans = append(spans, span{i + 1, j})
		i = j
	}
	return cut(s, spans, Mask)
}

// safe returns err's chain without the errors that hold a password. A node
// whose chain holds none is kept as it is; the others are replaced by what
// they wrap.
func safe(err error) error {
	if err == nil || !holdsPassword(err) {
		return err
	}
	switch e := err.(type) { //nolint:errorlint // walks the chain one node at a time
	case *pgconn.ConnectError:
		return safe(e.Unwrap())
	case *pgconn.ParseConfigError:
		if _, exact := redact(e.ConnString); !exact {
			return nil // its cause may quote a piece of the password
		}
		return safe(e.Unwrap())
	case interface{ Unwrap() []error }:
		var kept []error
		for _, c := range e.Unwrap() {
			if c = safe(c); c != nil {
				kept = append(kept, c)
			}
		}
		return errors.Join(kept...)
	case interface{ Unwrap() error }:
		return safe(e.Unwrap())
	}
	return nil
}

// holdsPassword reports whether err's chain has an error that holds a
// password.
func holdsPassword(err error) bool {
	var ce *pgconn.ConnectError
	var pce *pgconn.ParseConfigError
	return errors.As(err, &ce) || errors.As(err, &pce)
}

// minValue is the shortest value MaskValues masks: shorter ones would
// mangle ordinary words and hide almost nothing.
const minValue = 3

// MaskValues masks each of values, and its percent-encoded forms, wherever
// it appears in s, longest first. It is for values that have no known
// position, such as a statement's parameters that a server message may quote
// (invalid input syntax for type integer: "…"); values shorter than three
// bytes are left alone. Never use it for a password: pgx does not quote
// one, a short one would mangle the text (user=postgres, 127.0.0.1), and
// where the mask lands would tell it; use [Error], [Text] or [Redact].
func MaskValues(s string, values []string) string {
	var all []string
	for _, v := range values {
		if len(v) < minValue {
			continue
		}
		all = append(all, v, url.PathEscape(v), url.QueryEscape(v))
	}
	slices.SortFunc(all, func(a, b string) int { return len(b) - len(a) })
	for _, v := range all {
		s = strings.ReplaceAll(s, v, Mask)
	}
	return s
}
