// Package secret keeps passwords out of what the kit prints. It is the one
// place that knows where a password sits in a connection string, so that the
// other packages mask that position and nothing else:
//
//   - [Parse] splits a postgres:// URL or keyword/value string into its
//     password and the rest, the way pgx (like libpq) reads it: pgx is then
//     handed a string without a password, so that none of its errors can
//     quote one;
//   - [Redact] masks the password positions of a connection string for
//     display, keeping user, host, port and database readable;
//   - [Text] masks them in free text that may quote connection strings (a
//     log line, a message from pgtestdb);
//   - [Error] does the same for an error and cuts the pgx errors that hold a
//     password (pgconn.ConnectError.Config, pgconn.ParseConfigError.ConnString)
//     out of its chain.
//
// None of them replaces a password's text wherever it occurs. With password
// "postgres" and user postgres that would print user=xxxxx and role "xxxxx"
// does not exist; with password "1" the address 127.0.0.1 would print as
// xxxxx27.0.0.xxxxx, and where the mask lands would betray the password.
// pgx's own error texts never contain the password (they name the user and
// database, never Config.Password), so only the places a connection string is
// quoted need masking, and those are masked by position. [MaskValues] is the
// exception, for values that have no known position (query parameters a
// server message may quote).
//
// Everything here is a pure function, safe for concurrent use.
package secret

import (
	"errors"
	"slices"
	"strings"
)

// Mask stands in for a secret wherever the kit prints one.
const Mask = "xxxxx"

// ConnString is a connection string split the way pgx reads it: a
// postgres:// or postgresql:// URL, or a keyword/value string. It is a plain
// value, safe to copy and to read from several goroutines; its String masks
// the password.
type ConnString struct {
	// Password is the decoded password, "" when the string sets none (pgx
	// treats an empty password as none).
	Password string

	raw    string
	url    bool
	remove []span // cut out by WithoutPassword
	mask   []span // masked by Redacted
}

// span is a byte range [start, end) of a string.
type span struct{ start, end int }

// Parse splits s into its password and the rest. It accepts what pgx
// accepts, except where a password would be ambiguous (an unencoded "@"
// after the user info, a "?" in a user name, a control character in the user
// info or password parameter, a query parameter or keyword without "=", the
// password set twice), so that whatever Parse accepts, pgx
// reads the same password from it. Its errors never quote s; they read after
// the name of the thing parsed ("DB_MAIN_URL: has an unencoded …").
func Parse(s string) (ConnString, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return ConnString{}, errors.New("has a NUL byte")
	}
	if _, ok := urlScheme(s); ok {
		return parseURL(s)
	}
	return parseKeywordValue(s)
}

// IsURL reports whether c is a URL rather than a keyword/value string.
func (c ConnString) IsURL() bool { return c.url }

// WithoutPassword is the connection string with its password taken out: the
// user info's ":password", a password= query parameter or keyword. Give it
// to pgx and set the config's Password to [ConnString.Password].
func (c ConnString) WithoutPassword() string { return cut(c.raw, c.remove, "") }

// Redacted is the connection string with every password position masked
// (the password, an sslpassword, and in a URL without user info a port that
// is not a number: postgres://app:secret forgot its host); the rest reads as
// written.
func (c ConnString) Redacted() string { return cut(c.raw, c.mask, Mask) }

// String is Redacted, so that %v and %+v print no password.
func (c ConnString) String() string { return c.Redacted() }

// GoString is Redacted too, for %#v.
func (c ConnString) GoString() string { return "secret.ConnString(" + c.Redacted() + ")" }

// cut replaces each span of s with with. Overlapping or touching spans
// become one.
func cut(s string, spans []span, with string) string {
	if len(spans) == 0 {
		return s
	}
	spans = merge(spans)
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for _, sp := range spans {
		b.WriteString(s[at:sp.start])
		b.WriteString(with)
		at = sp.end
	}
	b.WriteString(s[at:])
	return b.String()
}

// merge sorts spans and joins those that overlap or touch; empty spans go.
func merge(spans []span) []span {
	spans = slices.DeleteFunc(slices.Clone(spans), func(sp span) bool { return sp.end <= sp.start })
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var out []span
	for _, sp := range spans {
		if n := len(out); n > 0 && sp.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// urlScheme returns the length of the postgres:// or postgresql:// prefix.
func urlScheme(s string) (int, bool) {
	for _, p := range []string{"postgresql://", "postgres://"} {
		if strings.HasPrefix(s, p) {
			return len(p), true
		}
	}
	return 0, false
}

// Errors of Parse, phrased to follow the name of what was parsed.
var (
	errUnencodedAt     = errors.New(`has an unencoded "@" in the user name or password; percent-encode it as %40 (and "/" as %2F, "%" as %25)`)
	errUserQuestion    = errors.New(`has an unencoded "?" in the user name; percent-encode it as %3F`)
	errUserEscape      = errors.New(`has an invalid percent-escape in the user name; encode "%" as %25`)
	errUserSpace       = errors.New(`has a space in the user name; percent-encode it as %20`)
	errPasswordEscape  = errors.New(`has an invalid percent-escape in the password; encode "%" as %25`)
	errPasswordSpace   = errors.New(`has a space in the password; percent-encode it as %20`)
	errParamEscape     = errors.New(`has an invalid percent-escape in the password parameter; encode "%" as %25`)
	errParamSpace      = errors.New(`has a space in the password parameter; percent-encode it as %20`)
	errParamEquals     = errors.New(`has an unencoded "=" in the password parameter; percent-encode it as %3D`)
	errUserControl     = errors.New(`has a control character (a tab, a line break) in the user name or password; percent-encode it (%09, %0A)`)
	errParamControl    = errors.New(`has a control character (a tab, a line break) in the password parameter; percent-encode it (%09, %0A)`)
	errParamNoEquals   = errors.New(`has a query parameter without "="; write key=value pairs separated by "&"`)
	errPasswordTwice   = errors.New("sets a password twice (user info and password parameter); keep one")
	errParamTwice      = errors.New("sets the password parameter twice; keep one")
	errKeywordNoEquals = errors.New(`has a word without "=" (a keyword/value string is key=value pairs separated by spaces; quote a value with spaces as '…')`)
	errKeywordEmpty    = errors.New(`has "=" without a keyword before it`)
	errUnterminated    = errors.New(`has a quoted value without its closing "'"`)
	errKeywordTwice    = errors.New("sets password twice; keep one")
)

// parseURL reads a postgres:// URL the way pgx's parseURLSettings (and
// libpq's conninfo_uri_parse_options) does.
func parseURL(s string) (ConnString, error) {
	c := ConnString{raw: s, url: true}
	off, _ := urlScheme(s)
	p := s[off:]
	host := off // where the host list starts
	// Like libpq, the user info ends at the first "@" unless a "/" comes first.
	if i := strings.IndexAny(p, "@/"); i >= 0 && p[i] == '@' {
		user, pw, hasPW := strings.Cut(p[:i], ":")
		if strings.ContainsFunc(p[:i], isControl) {
			// A log line would break the URL there, password and all.
			return ConnString{}, errUserControl
		}
		if strings.Contains(user, "?") {
			// Ambiguous: postgres://h?password=p@ss reads as user h?password=p.
			return ConnString{}, errUserQuestion
		}
		if _, err := uriDecode(user); err != nil {
			return ConnString{}, pick(err, errUserEscape, errUserSpace)
		}
		if hasPW && pw != "" {
			dec, err := uriDecode(pw)
			if err != nil {
				return ConnString{}, pick(err, errPasswordEscape, errPasswordSpace)
			}
			start := off + len(user) + 1
			c.Password = dec
			c.remove = append(c.remove, span{start - 1, start + len(pw)})
			c.mask = append(c.mask, span{start, start + len(pw)})
		}
		host = off + i + 1
	}
	rest := s[host:]
	q := uriQueryStart(rest)
	before := rest
	if q >= 0 {
		before = rest[:q]
	}
	if strings.Contains(before, "@") {
		// pgx would take the rest of the password for the host (or path)
		// and print it in DNS errors.
		return ConnString{}, errUnencodedAt
	}
	if host == off {
		// Without user info, a port that is not a number may be the
		// password of a URL whose host was forgotten (postgres://app:secret).
		c.mask = append(c.mask, oddPorts(before, host)...)
	}
	if q < 0 {
		return c, nil
	}
	return c, c.parseQuery(host + q + 1)
}

// pick maps a uriDecode error to the escape or space message.
func pick(err, escape, space error) error {
	if errors.Is(err, errSpace) {
		return space
	}
	return escape
}

// queryParam splits the URL query parameter that starts at s[at:]: its raw
// key and value, whether it has an "=", and where it ends (at its "&", or
// len(s)).
func queryParam(s string, at int) (key, val string, found bool, end int) {
	end = strings.IndexByte(s[at:], '&')
	if end < 0 {
		end = len(s)
	} else {
		end += at
	}
	key, val, found = strings.Cut(s[at:end], "=")
	return key, val, found, end
}

// parseQuery reads the query parameters starting at s[at:] the way pgx's
// parseURLQueryParams does: "&"-separated key=value pairs, a trailing "&"
// allowed.
func (c *ConnString) parseQuery(at int) error {
	s := c.raw
	paramPW := false
	for at < len(s) {
		rawKey, rawVal, found, end := queryParam(s, at)
		if !found {
			return errParamNoEquals
		}
		vstart := at + len(rawKey) + 1
		switch lenientDecode(rawKey) {
		case "password":
			if strings.Contains(rawVal, "=") {
				return errParamEquals
			}
			if strings.ContainsFunc(rawVal, isControl) {
				return errParamControl
			}
			dec, err := uriDecode(rawVal)
			if err != nil {
				return pick(err, errParamEscape, errParamSpace)
			}
			// Like pgx, the last occurrence would win, an empty one too:
			// refuse any repetition rather than guess.
			switch {
			case paramPW:
				return errParamTwice
			case c.Password != "":
				return errPasswordTwice
			}
			paramPW = true
			if dec == "" {
				break
			}
			c.Password = dec
			c.mask = append(c.mask, span{vstart, end})
			if end < len(s) { // password=…& : take the "&" after it
				c.remove = append(c.remove, span{at, end + 1})
			} else { // the last pair: take the "&" or "?" before it
				c.remove = append(c.remove, span{at - 1, end})
			}
		case "sslpassword":
			c.mask = append(c.mask, span{vstart, end})
		}
		at = end + 1
	}
	return nil
}

// uriQueryStart returns the index of the "?" that starts the query of p (the
// URL after its user info), or -1; it follows pgx's host list syntax, where
// a bracketed IPv6 address may hold a "?".
func uriQueryStart(p string) int {
	i := 0
	for {
		if i < len(p) && p[i] == '[' {
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return strings.IndexByte(p, '?')
			}
			i += end + 1
		}
		for i < len(p) && p[i] != '/' && p[i] != '?' && p[i] != ',' {
			i++
		}
		if i < len(p) && p[i] == ',' {
			i++
			continue
		}
		break
	}
	if i == len(p) {
		return -1
	}
	if p[i] == '?' {
		return i
	}
	if j := strings.IndexByte(p[i:], '?'); j >= 0 {
		return i + j
	}
	return -1
}

// oddPorts returns the spans (offset by off) of the ports in the host list
// at the start of hostPath that are not numbers: pgx rejects them, and the
// text there may be a mislaid password (postgres://user:password, the host
// forgotten).
func oddPorts(hostPath string, off int) []span {
	var out []span
	i := 0
	for {
		if i < len(hostPath) && hostPath[i] == '[' {
			end := strings.IndexByte(hostPath[i:], ']')
			if end < 0 {
				return out
			}
			i += end + 1
		} else {
			for i < len(hostPath) && !strings.ContainsRune(":/?,", rune(hostPath[i])) {
				i++
			}
		}
		if i < len(hostPath) && hostPath[i] == ':' {
			i++
			start := i
			for i < len(hostPath) && !strings.ContainsRune("/?,", rune(hostPath[i])) {
				i++
			}
			if port := hostPath[start:i]; strings.Trim(port, "0123456789") != "" {
				out = append(out, span{off + start, off + i})
			}
		}
		if i < len(hostPath) && hostPath[i] == ',' {
			i++
			continue
		}
		return out
	}
}

var errEscape, errSpace = errors.New("bad percent-escape"), errors.New("space")

// uriDecode percent-decodes a URL component the way pgx (and libpq) does:
// leading and trailing spaces dropped, inner spaces rejected, "%" followed
// by exactly two hex digits, %00 rejected.
func uriDecode(raw string) (string, error) {
	raw = strings.Trim(raw, " ")
	if strings.IndexByte(raw, ' ') >= 0 {
		return "", errSpace
	}
	if strings.IndexByte(raw, '%') < 0 {
		return raw, nil
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			b.WriteByte(raw[i])
			continue
		}
		if i+2 >= len(raw) {
			return "", errEscape
		}
		hi, ok1 := hexDigit(raw[i+1])
		lo, ok2 := hexDigit(raw[i+2])
		if !ok1 || !ok2 || hi == 0 && lo == 0 {
			return "", errEscape
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

// lenientDecode decodes what it can and never fails: good enough to tell
// which keyword a query parameter names (pass%77ord is password).
func lenientDecode(raw string) string {
	raw = strings.Trim(raw, " ")
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == '%' && i+2 < len(raw) {
			hi, ok1 := hexDigit(raw[i+1])
			lo, ok2 := hexDigit(raw[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// isSpace is the whitespace of keyword/value strings (libpq's isspace).
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// kvToken is one keyword=value pair of a keyword/value string.
type kvToken struct {
	keyStart, keyEnd int // the keyword
	valStart, valEnd int // the value's text, inside its quotes
	end              int // after the value (and its closing quote)
	quoted           bool
}

// nextToken reads the pair at s[i:] (i at a non-space) the way pgx's
// parseKeywordValueSettings does.
func nextToken(s string, i int) (kvToken, error) {
	eq := strings.IndexByte(s[i:], '=')
	if eq < 0 {
		return kvToken{}, errKeywordNoEquals
	}
	t := kvToken{keyStart: i, keyEnd: i + eq}
	for t.keyEnd > t.keyStart && isSpace(s[t.keyEnd-1]) {
		t.keyEnd--
	}
	key := s[t.keyStart:t.keyEnd]
	if key == "" {
		return kvToken{}, errKeywordEmpty
	}
	if strings.ContainsFunc(key, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }) {
		return kvToken{}, errKeywordNoEquals
	}
	j := skipSpace(s, i+eq+1)
	switch {
	case j == len(s):
		t.valStart, t.valEnd, t.end = j, j, j
	case s[j] != '\'':
		k := j
		for k < len(s) && !isSpace(s[k]) {
			if s[k] == '\\' {
				k++
			}
			k++
		}
		k = min(k, len(s))
		t.valStart, t.valEnd, t.end = j, k, k
	default:
		k := j + 1
		for k < len(s) && s[k] != '\'' {
			if s[k] == '\\' {
				k++
			}
			k++
		}
		if k >= len(s) {
			return kvToken{}, errUnterminated
		}
		t.valStart, t.valEnd, t.end, t.quoted = j+1, k, k+1, true
	}
	return t, nil
}

// unescape applies libpq's backslash rule: a backslash is dropped and the
// character after it taken as is.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			if i == len(s) {
				break
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseKeywordValue reads a keyword/value string the way pgx does.
func parseKeywordValue(s string) (ConnString, error) {
	c := ConnString{raw: s}
	seen := false
	for i := skipSpace(s, 0); i < len(s); {
		t, err := nextToken(s, i)
		if err != nil {
			return ConnString{}, err
		}
		next := skipSpace(s, t.end)
		switch s[t.keyStart:t.keyEnd] {
		case "password":
			// Like pgx, the last occurrence would win, an empty one too.
			if seen {
				return ConnString{}, errKeywordTwice
			}
			seen = true
			if val := unescape(s[t.valStart:t.valEnd]); val != "" {
				c.Password = val
				c.mask = append(c.mask, span{t.valStart, t.valEnd})
				c.remove = append(c.remove, span{t.keyStart, next})
			}
		case "sslpassword":
			c.mask = append(c.mask, span{t.valStart, t.valEnd})
		}
		i = next
	}
	return c, nil
}
