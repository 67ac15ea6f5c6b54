package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// redacted replaces a secret wherever the provider prints one.
const redacted = "xxxxx"

// connURL is a connection URL split the way pgx (like libpq) reads it.
type connURL struct {
	scheme, user, hostPath, query string // user and the rest still percent-encoded
	password                      string // decoded
	hasPassword                   bool
}

// splitURL checks a connection URL and takes its password out (from the user
// info or a password= parameter), so that pgx never sees it: pgx's parse
// errors and configs would otherwise carry it. Errors never quote the URL.
func splitURL(raw string) (connURL, error) {
	var u connURL
	rest, ok := strings.CutPrefix(raw, "postgresql://")
	if ok {
		u.scheme = "postgresql://"
	} else if rest, ok = strings.CutPrefix(raw, "postgres://"); ok {
		u.scheme = "postgres://"
	} else {
		return u, errors.New("must be a postgres:// or postgresql:// URL (key=value strings are not accepted)")
	}
	// Like libpq, the user info ends at the first '@' unless a '/' comes first.
	var userinfo string
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		userinfo, rest = rest[:i], rest[i+1:]
	}
	hostPath, query, _ := strings.Cut(rest, "?")
	if strings.Contains(hostPath, "@") {
		// An unencoded '@' in the password: pgx would take the rest of the
		// password for the host name and print it in DNS errors.
		return u, errors.New(`has an unencoded "@" in the user name or password; percent-encode it as %40 (and "/" as %2F, "%" as %25)`)
	}
	user, pw, _ := strings.Cut(userinfo, ":")
	if pw != "" {
		dec, err := url.PathUnescape(pw)
		if err != nil {
			return u, errors.New(`has an invalid percent-escape in the password; encode "%" as %25`)
		}
		u.password, u.hasPassword = dec, true
	}
	if _, err := url.PathUnescape(user); err != nil {
		return u, errors.New(`has an invalid percent-escape in the user name; encode "%" as %25`)
	}
	if query != "" {
		var kept []string
		for kv := range strings.SplitSeq(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if k, _ = url.PathUnescape(k); k != "password" {
				kept = append(kept, kv)
				continue
			}
			dec, err := url.PathUnescape(v)
			if err != nil {
				return u, errors.New(`has an invalid percent-escape in the password parameter; encode "%" as %25`)
			}
			if u.hasPassword && dec != "" {
				return u, errors.New("sets a password twice (user info and password parameter); keep one")
			}
			if dec != "" {
				u.password, u.hasPassword = dec, true
			}
		}
		query = strings.Join(kept, "&")
	}
	u.user, u.hostPath, u.query = user, hostPath, query
	return u, nil
}

// withoutPassword is the URL with its password removed.
func (u connURL) withoutPassword() string { return u.build("") }

// redacted is the URL with its password masked.
func (u connURL) redacted() string {
	if !u.hasPassword {
		return u.build("")
	}
	return u.build(redacted)
}

func (u connURL) build(password string) string {
	var b strings.Builder
	b.WriteString(u.scheme)
	if u.user != "" || password != "" {
		b.WriteString(u.user)
		if password != "" {
			b.WriteString(":" + password)
		}
		b.WriteString("@")
	}
	b.WriteString(u.hostPath)
	if u.query != "" {
		b.WriteString("?" + u.query)
	}
	return b.String()
}

// redactURL masks the password of a URL for display.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := splitURL(raw)
	if err != nil {
		return "(invalid URL, " + redacted + ")"
	}
	return u.redacted()
}

// discreteURL builds a password-less URL from HOST, PORT, USER, DBNAME and
// SSLMODE.
func discreteURL(c DatabaseConfig) string {
	dbname := c.DBName
	if dbname == "" {
		dbname = c.User
	}
	q := url.Values{}
	q.Set("host", c.Host) // a query parameter also takes a socket directory
	q.Set("port", strconv.Itoa(c.Port))
	q.Set("sslmode", c.SSLMode)
	u := url.URL{Scheme: "postgres", User: url.User(c.User), Path: "/" + dbname}
	// pgx decodes %20, not '+'.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// redactedError is an error whose text has its secrets masked and whose
// chain skips pgconn.ConnectError (its Config holds the password) and
// pgconn.ParseConfigError (its ConnString may).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact masks secrets in err's text and drops the parts of its chain that
// carry a connection config.
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: scrub(err.Error(), secrets), err: safeCause(err)}
}

func safeCause(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return safeCause(ce.Unwrap())
	}
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return safeCause(pe.Unwrap())
	}
	return err
}

// minSecret is the shortest secret scrub replaces: shorter strings would
// mangle ordinary words and hide almost nothing.
const minSecret = 3

// scrub masks each secret, and its percent-encoded forms, in s.
func scrub(s string, secrets []string) string {
	var all []string
	for _, sec := range secrets {
		if len(sec) < minSecret {
			continue
		}
		all = append(all, sec, url.PathEscape(sec), url.QueryEscape(sec))
	}
	// Longest first, so a secret containing another is masked whole.
	slices.SortFunc(all, func(a, b string) int { return len(b) - len(a) })
	for _, sec := range all {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}

// secrets lists the passwords a database's pools use.
func (c DatabaseConfig) secrets() []string {
	var out []string
	if c.Password != "" {
		out = append(out, c.Password)
	}
	for _, raw := range append([]string{c.URL}, c.ReplicaURLs...) {
		if u, err := splitURL(raw); err == nil && u.hasPassword {
			out = append(out, u.password)
		}
	}
	return out
}

// The methods below keep passwords out of fmt (%v, %+v, %#v), slog and JSON.
type (
	plainConfig         Config
	plainDatabaseConfig DatabaseConfig
)

func (c DatabaseConfig) redacted() plainDatabaseConfig {
	c.URL = redactURL(c.URL)
	if c.Password != "" {
		c.Password = redacted
	}
	c.ReplicaURLs = slices.Clone(c.ReplicaURLs)
	for i, r := range c.ReplicaURLs {
		c.ReplicaURLs[i] = redactURL(r)
	}
	return plainDatabaseConfig(c)
}

// String formats c with its passwords masked.
func (c DatabaseConfig) String() string { return fmt.Sprintf("%+v", c.redacted()) }

// GoString formats c for %#v with its passwords masked.
func (c DatabaseConfig) GoString() string {
	return "provider.DatabaseConfig" + strings.TrimPrefix(fmt.Sprintf("%#v", c.redacted()), "provider.plainDatabaseConfig")
}

// LogValue implements slog.LogValuer with the passwords masked.
func (c DatabaseConfig) LogValue() slog.Value { return slog.AnyValue(c.redacted()) }

// MarshalJSON encodes c with its passwords masked.
func (c DatabaseConfig) MarshalJSON() ([]byte, error) { return json.Marshal(c.redacted()) }

func (c Config) redacted() plainConfig {
	c.DatabaseURL = redactURL(c.DatabaseURL)
	// Databases print through DatabaseConfig's own redacting methods.
	return plainConfig(c)
}

// String formats c with its passwords masked.
func (c Config) String() string { return fmt.Sprintf("%+v", c.redacted()) }

// GoString formats c for %#v with its passwords masked.
func (c Config) GoString() string {
	return "provider.Config" + strings.TrimPrefix(fmt.Sprintf("%#v", c.redacted()), "provider.plainConfig")
}

// LogValue implements slog.LogValuer with the passwords masked.
func (c Config) LogValue() slog.Value {
	p := c.redacted()
	dbs := make([]plainDatabaseConfig, len(p.Databases))
	for i, d := range p.Databases {
		dbs[i] = d.redacted()
	}
	return slog.GroupValue(
		slog.Any("names", p.Names),
		slog.String("database_url", p.DatabaseURL),
		slog.String("log_level", p.LogLevel),
		slog.Duration("slow_query", p.SlowQuery),
		slog.Bool("log_params", p.LogParams),
		slog.Any("databases", dbs),
	)
}

// MarshalJSON encodes c with its passwords masked.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.redacted()) }
