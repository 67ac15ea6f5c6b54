package secret_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/internal/secret/secrettest"
)

// marker: see secrettest.
const marker = secrettest.Marker

var stripMarker = secrettest.Strip

// The forms of connection string the fuzz targets build.
const (
	formURL        = iota // postgres://user:password@host:port/db?application_name=…, all encoded
	formURLParam          // postgresql://user@host:port/db?password=…&application_name=…, encoded
	formKeyword           // host=… port=… user='…' password='…' dbname='…' application_name='…'
	formRawURL            // postgres://user:password@host:port/db, nothing encoded
	formRawKeyword        // host=… user=… password=… dbname=…, nothing quoted
	formAny               // the password is the whole string
	forms
)

// conn is a connection string built from fuzzed parts.
type conn struct {
	s        string
	form     int
	password string // with the marker
	redacted string // what Redact must return, for the exact forms
}

func (c conn) exact() bool { return c.form <= formKeyword }

// build places password (the marker inserted at pos) in a connection string
// of form made of the other parts.
func build(form uint8, user, password, host string, port uint16, db, app string, pos uint8) conn {
	c := conn{form: int(form % forms)}
	if c.exact() {
		// pgx rejects a NUL anywhere, even encoded (%00).
		nul := func(s string) string { return strings.ReplaceAll(s, "\x00", "") }
		user, password, host, db, app = nul(user), nul(password), nul(host), nul(db), nul(app)
	}
	i := int(pos) % (len(password) + 1)
	pw := password[:i] + marker + password[i:]
	c.password = pw
	user, host, db, app = stripMarker(user), stripMarker(host), stripMarker(db), stripMarker(app)
	if c.exact() {
		// Public parts that Text would read as secrets are not public.
		for _, w := range []string{"password", "postgres"} {
			user, db, app = dropWord(user, w), dropWord(db, w), dropWord(app, w)
		}
		host = strings.Map(func(r rune) rune {
			if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
				return r
			}
			return -1
		}, host)
		if host == "" {
			host = "h"
		}
	}
	p := strconv.Itoa(int(port))
	build := func(pw string) string {
		switch c.form {
		case formURL:
			return "postgres://" + enc(user) + ":" + pw + "@" + host + ":" + p + "/" + enc(db) + "?application_name=" + enc(app)
		case formURLParam:
			return "postgresql://" + enc(user) + "@" + host + ":" + p + "/" + enc(db) + "?password=" + pw + "&application_name=" + enc(app)
		case formKeyword:
			return "host=" + host + " port=" + p + " user=" + quote(user) + " password='" + pw + "' dbname=" + quote(db) + " application_name=" + quote(app)
		case formRawURL:
			return "postgres://" + user + ":" + pw + "@" + host + ":" + p + "/" + db
		case formRawKeyword:
			return "host=" + host + " user=" + user + " password=" + pw + " dbname=" + db
		}
		return pw
	}
	switch c.form {
	case formURL, formURLParam:
		c.s, c.redacted = build(enc(pw)), build(secret.Mask)
	case formKeyword:
		q := quote(pw)
		c.s, c.redacted = build(q[1:len(q)-1]), build(secret.Mask)
	default:
		c.s = build(pw)
	}
	return c
}

func dropWord(s, w string) string {
	for {
		i := strings.Index(lowerASCII(s), w)
		if i < 0 {
			return s
		}
		s = s[:i] + s[i+len(w):]
	}
}

func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// enc: see secrettest.Encode.
var enc = secrettest.Encode

// quote quotes a keyword/value value.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// leakChecked reports whether the marker must not show in what is printed of
// c: when Parse found the password holding it, or when c is one of the raw
// forms and Parse rejected it (too malformed to tell where the password ends,
// so everything that may be the password must be masked).
func leakChecked(c conn, parsed secret.ConnString, perr error) bool {
	if perr == nil {
		return strings.Contains(parsed.Password, marker)
	}
	return c.form == formRawURL || c.form == formRawKeyword
}

func requireNoMarker(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, marker) {
		t.Fatalf("%s shows a piece of the password: %q", what, out)
	}
}

// FuzzRedact builds connection strings (URL and keyword/value, encoded and
// raw) around a password and checks Parse, Redact and Text: the password
// never shows; where the string is well formed, Parse reads the password pgx
// reads and Redact masks exactly it, user, host, port and database left as
// written.
func FuzzRedact(f *testing.F) {
	f.Fuzz(func(t *testing.T, form uint8, user, password, host string, port uint16, db, app string, pos uint8) {
		c := build(form, user, password, host, port, db, app, pos)
		parsed, perr := secret.Parse(c.s)
		out := secret.Redact(c.s)
		if c.exact() {
			require.NoError(t, perr, c.s)
			require.Equal(t, c.password, parsed.Password, c.s)
			require.Equal(t, c.redacted, out, c.s)
			requireSamePassword(t, c.s, parsed)
			text := "at " + c.s + " failed"
			require.Equal(t, "at "+c.redacted+" failed", secret.Text(text), text)
		}
		if perr == nil {
			require.Equal(t, out, parsed.Redacted())
			requireSamePassword(t, c.s, parsed)
			if strings.Contains(parsed.Password, marker) {
				requireNoMarker(t, "WithoutPassword", parsed.WithoutPassword())
				requireNoMarker(t, "Text", secret.Text("at "+c.s+" failed"))
				requireNoMarker(t, "fmt", fmt.Sprintf("%v %+v %#v %s", parsed, parsed, parsed, parsed))
			}
		}
		if leakChecked(c, parsed, perr) {
			requireNoMarker(t, "Redact", out)
			if c.form == formRawURL && !strings.ContainsAny(c.s, " \t\n\r\v\f\"'`<>") {
				requireNoMarker(t, "Text", secret.Text("at "+c.s+" failed"))
			}
		}
	})
}

// FuzzError builds the same connection strings, has pgx parse them (and,
// when Parse accepts one, connect with its password taken out to a fake
// server that refuses the role) and checks Error: the password never shows
// in its text or %+v/%#v, the errors that hold a password are out of its
// chain, and user, database, host and port stay readable.
func FuzzError(f *testing.F) {
	f.Fuzz(func(t *testing.T, form uint8, user, password, host string, port uint16, db, app string, pos uint8) {
		c := build(form, user, password, host, port, db, app, pos)
		parsed, perr := secret.Parse(c.s)
		check := func(what string, err error) {
			t.Helper()
			e := secret.Error(fmt.Errorf("%s: %w", what, err))
			requireNoMarker(t, what, fmt.Sprintf("%v|%+v|%#v|%s", e, e, e, e))
			var ce *pgconn.ConnectError
			var pce *pgconn.ParseConfigError
			require.False(t, errors.As(e, &ce) || errors.As(e, &pce), "a password-holding error is in the chain")
		}
		if _, err := pgconn.ParseConfig(c.s); err != nil && leakChecked(c, parsed, perr) {
			check("parse", err)
		}
		if perr != nil {
			return
		}
		cfg, err := pgconn.ParseConfig(parsed.WithoutPassword())
		if err != nil {
			if strings.Contains(parsed.Password, marker) {
				check("parse without password", err)
			}
			return
		}
		if parsed.Password != "" {
			cfg.Password = parsed.Password
		}
		cfg.TLSConfig, cfg.Fallbacks = nil, nil
		cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
		cfg.DialFunc = fakeServer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = pgconn.ConnectConfig(ctx, cfg)
		require.Error(t, err)
		if strings.Contains(parsed.Password, marker) {
			check("connect", err)
		}
		if c.exact() {
			e := secret.Error(err)
			require.Contains(t, e.Error(), fmt.Sprintf("failed to connect to `user=%s database=%s`: ", cfg.User, cfg.Database))
			require.Contains(t, e.Error(), fmt.Sprintf("%s:%d (%s)", cfg.Host, cfg.Port, cfg.Host))
			var pgErr *pgconn.PgError
			require.ErrorAs(t, e, &pgErr)
		}
	})
}
