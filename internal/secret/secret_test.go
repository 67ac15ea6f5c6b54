package secret_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/secret"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw, without, redacted, password string
	}{
		{"postgres://app:pw%40x@db:5432/erp?sslmode=disable", "postgres://app@db:5432/erp?sslmode=disable", "postgres://app:xxxxx@db:5432/erp?sslmode=disable", "pw@x"},
		{"postgresql://app@db/erp?password=p%2Fw&sslmode=disable", "postgresql://app@db/erp?sslmode=disable", "postgresql://app@db/erp?password=xxxxx&sslmode=disable", "p/w"},
		{"postgres://app@db/erp?sslmode=disable&password=p", "postgres://app@db/erp?sslmode=disable", "postgres://app@db/erp?sslmode=disable&password=xxxxx", "p"},
		{"postgres://app@db/erp?password=p", "postgres://app@db/erp", "postgres://app@db/erp?password=xxxxx", "p"},
		{"postgres://app:p:w#?x@db/erp", "postgres://app@db/erp", "postgres://app:xxxxx@db/erp", "p:w#?x"},
		{"postgres://db/erp", "postgres://db/erp", "postgres://db/erp", ""},
		{"postgres://h1:5432,h2:5433/erp", "postgres://h1:5432,h2:5433/erp", "postgres://h1:5432,h2:5433/erp", ""},
		{"postgres://u:@h/d", "postgres://u:@h/d", "postgres://u:@h/d", ""},
		{"postgres://:pw@[::1]:5432/d", "postgres://@[::1]:5432/d", "postgres://:xxxxx@[::1]:5432/d", "pw"},
		{"postgres://u:pw@h/d?sslpassword=key&application_name=a@b", "postgres://u@h/d?sslpassword=key&application_name=a@b", "postgres://u:xxxxx@h/d?sslpassword=xxxxx&application_name=a@b", "pw"},
		{"postgres://user:password", "postgres://user:password", "postgres://user:xxxxx", ""},
		{"postgres://postgres:postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres:xxxxx@127.0.0.1:5432/postgres", "postgres"},
		{"postgres://postgres:1@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres:xxxxx@127.0.0.1:5432/postgres", "1"},
		{"postgres://u: pw @h", "postgres://u@h", "postgres://u:xxxxx@h", "pw"},
		{"host=localhost port=5432 user=app password=s3cret dbname=erp", "host=localhost port=5432 user=app dbname=erp", "host=localhost port=5432 user=app password=xxxxx dbname=erp", "s3cret"},
		{`host=h password='it\'s a \\ "pw"' sslmode=disable`, "host=h sslmode=disable", "host=h password='xxxxx' sslmode=disable", `it's a \ "pw"`},
		{"host=h password = p\\ w", "host=h ", "host=h password = xxxxx", "p w"},
		{"password= host=h", "", "password= xxxxx", "host=h"},
		{"host=h password=''", "host=h password=''", "host=h password=''", ""},
		{"host=/tmp dbname=x", "host=/tmp dbname=x", "host=/tmp dbname=x", ""},
		{"", "", "", ""},
	} {
		c, err := secret.Parse(tc.raw)
		require.NoError(t, err, tc.raw)
		require.Equal(t, tc.without, c.WithoutPassword(), tc.raw)
		require.Equal(t, tc.redacted, c.Redacted(), tc.raw)
		require.Equal(t, tc.redacted, secret.Redact(tc.raw), tc.raw)
		require.Equal(t, tc.password, c.Password, tc.raw)
		for _, f := range []string{"%v", "%+v", "%s", "%#v"} {
			if tc.password != "" {
				require.NotContains(t, fmt.Sprintf(f, c), ":"+tc.password+"@", f)
			}
		}
		requireSamePassword(t, tc.raw, c)
	}
}

// requireSamePassword checks that pgx reads from c.WithoutPassword() and
// c.Password what it reads from raw.
func requireSamePassword(t *testing.T, raw string, c secret.ConnString) {
	t.Helper()
	want, err := pgconn.ParseConfig(raw)
	if err != nil {
		_, err2 := pgconn.ParseConfig(c.WithoutPassword())
		require.Error(t, err2, "pgx rejects %q but not %q", raw, c.WithoutPassword())
		return
	}
	got, err := pgconn.ParseConfig(c.WithoutPassword())
	require.NoError(t, err, raw)
	if c.Password != "" {
		got.Password = c.Password
	}
	require.Equal(t, want.Password, got.Password, raw)
	require.Equal(t, want.User, got.User, raw)
	require.Equal(t, want.Host, got.Host, raw)
	require.Equal(t, want.Port, got.Port, raw)
	require.Equal(t, want.Database, got.Database, raw)
	require.Equal(t, want.RuntimeParams, got.RuntimeParams, raw)
}

func TestParseRejectsAmbiguousStrings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, err, redacted string }{
		{"postgres://app:pa@ss-secret@db/erp", `has an unencoded "@" in the user name or password; percent-encode it as %40 (and "/" as %2F, "%" as %25)`, "postgres://app:xxxxx@db/erp"},
		{"postgres://app:s3cr3t/x@localhost:5432/app", `has an unencoded "@"`, "postgres://app:xxxxx@localhost:5432/app"},
		{"postgres://h?password=p@ss", `has an unencoded "?" in the user name`, "postgres://xxxxx@ss"},
		{"postgres://app:pa%zzsecret@db/erp", "has an invalid percent-escape in the password", "postgres://app:xxxxx@db/erp"},
		{"postgres://app:pa%00x@db/erp", "has an invalid percent-escape in the password", "postgres://app:xxxxx@db/erp"},
		{"postgres://app:pa ss@db/erp", "has a space in the password", "postgres://app:xxxxx@db/erp"},
		{"postgres://a%zz@db/erp", "has an invalid percent-escape in the user name", "postgres://a%zz@db/erp"},
		{"postgres://app:one-secret@db/erp?password=two-secret", "sets a password twice (user info and password parameter); keep one", "postgres://app:xxxxx@db/erp?password=xxxxx"},
		{"postgres://db/erp?password=a&password=", "sets the password parameter twice", "postgres://db/erp?password=xxxxx"},
		{"postgres://db/erp?password=a=b", `has an unencoded "=" in the password parameter`, "postgres://db/erp?password=xxxxx"},
		{"postgres://db/erp?password=a&b&sslmode=disable", `has a query parameter without "="`, "postgres://db/erp?password=xxxxx"},
		{"postgres://db/erp?password=p%zz", "has an invalid percent-escape in the password parameter", "postgres://db/erp?password=xxxxx"},
		{"host=h password=my secret pw port=5432", `has a word without "="`, "host=h password=xxxxx"},
		{"host=h password='unterminated port=5432", `has a quoted value without its closing "'"`, "host=h password='xxxxx"},
		{"host=h application_name='x password=secret", `has a quoted value without its closing "'"`, "host=h application_name='x password=xxxxx"},
		{"host=h password=a password=b", "sets password twice", "host=h password=xxxxx"},
		{"host=h =x", `has "=" without a keyword`, "host=h =x"},
		{"host=h pass\x00word=x", "has a NUL byte", "host=h pass\x00word=x"},
	} {
		_, err := secret.Parse(tc.raw)
		require.ErrorContains(t, err, tc.err, tc.raw)
		require.Equal(t, tc.redacted, secret.Redact(tc.raw), tc.raw)
	}
}

func TestRedactMasksOtherURLsByBestEffort(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"mysql://u:pw@h/db?x=1":                         "mysql://u:xxxxx@h/db?x=1",
		"POSTGRES://u:pw@h/db":                          "POSTGRES://u:xxxxx@h/db",
		"postgres://u:secret/x@h:abc/db?password=a&b=c": "postgres://u:xxxxx@h:xxxxx/db?password=xxxxx",
		"postgres://a/b:pw@h":                           "postgres://xxxxx@h",
		"not a connection string":                       "not a connection string",
	} {
		require.Equal(t, want, secret.Redact(raw), raw)
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"testdbconf: postgres://pgtdbuser:pgtdbpass@127.0.0.1:5432/db_1?sslmode=disable":                 "testdbconf: postgres://pgtdbuser:xxxxx@127.0.0.1:5432/db_1?sslmode=disable",
		"cannot parse `postgres://app:pw@db:abc/erp`: invalid port":                                      "cannot parse `postgres://app:xxxxx@db:abc/erp`: invalid port",
		`parse "postgres://u:pw/x@h": invalid port`:                                                      `parse "postgres://u:xxxxx@h": invalid port`,
		"dsn host=h user=postgres password='p w' dbname=postgres, then SSLPASSWORD = k and Password:x":   "dsn host=h user=postgres password='xxxxx' dbname=postgres, then SSLPASSWORD = xxxxx and Password:x",
		`ALTER ROLE app WITH LOGIN PASSWORD 'it''s' VALID UNTIL 'infinity'`:                              `ALTER ROLE app WITH LOGIN PASSWORD 'xxxxx' VALID UNTIL 'infinity'`,
		"FATAL: password authentication failed for user \"postgres\" (SQLSTATE 28P01)":                   "FATAL: password authentication failed for user \"postgres\" (SQLSTATE 28P01)",
		"failed to connect to `user=postgres database=postgres`: 127.0.0.1:5432 (localhost): dial error": "failed to connect to `user=postgres database=postgres`: 127.0.0.1:5432 (localhost): dial error",
		"mypassword=x nopassword and postgres:// alone":                                                  "mypassword=x nopassword and postgres:// alone",
	} {
		require.Equal(t, want, secret.Text(in), in)
	}
}

// fakeServer answers a startup message the way PostgreSQL does for an
// unknown role, over an in-memory connection.
func fakeServer(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		_ = server.SetDeadline(time.Now().Add(5 * time.Second))
		be := pgproto3.NewBackend(server, server)
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		user := msg.(*pgproto3.StartupMessage).Parameters["user"]
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "28000",
			Message: fmt.Sprintf("role %q does not exist", user)})
		_ = be.Flush()
	}()
	return client, nil
}

// connectError connects to a fake server with pgx's config of connString
// (its password taken out first) and returns pgx's error.
func connectError(t testing.TB, connString string, dial pgconn.DialFunc) error {
	t.Helper()
	c, err := secret.Parse(connString)
	require.NoError(t, err)
	cfg, err := pgconn.ParseConfig(c.WithoutPassword())
	require.NoError(t, err)
	if c.Password != "" {
		cfg.Password = c.Password
	}
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	cfg.DialFunc = dial
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	require.Error(t, err)
	require.Nil(t, conn)
	return err
}

func TestErrorKeepsUserHostAndPortReadable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, url, want string }{
		{"the password is the user name",
			"postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable",
			"failed to connect to `user=postgres database=postgres`: 127.0.0.1:5432 (127.0.0.1): server error: FATAL: role \"postgres\" does not exist (SQLSTATE 28000)"},
		{"the password is a digit of the address",
			"postgres://app:1@127.0.0.1:5432/app1?sslmode=disable",
			"failed to connect to `user=app database=app1`: 127.0.0.1:5432 (127.0.0.1): server error: FATAL: role \"app\" does not exist (SQLSTATE 28000)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := secret.Error(fmt.Errorf("ping: %w", connectError(t, tc.url, fakeServer)))
			require.EqualError(t, err, "ping: "+tc.want)
			var ce *pgconn.ConnectError
			require.False(t, errors.As(err, &ce), "the ConnectError (and its Config) is out of the chain")
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, "28000", pgErr.Code)
			require.Equal(t, "ping: "+tc.want, fmt.Sprintf("%+v", err))
			require.Equal(t, "ping: "+tc.want, fmt.Sprintf("%#v", err))
		})
	}
	t.Run("a net error stays in the chain", func(t *testing.T) {
		t.Parallel()
		refused := func(context.Context, string, string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		err := secret.Error(connectError(t, "host=127.0.0.1 port=1 user=postgres password=1", refused))
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.EqualError(t, err, "failed to connect to `user=postgres database=`: 127.0.0.1:1 (127.0.0.1): dial error: dial tcp: connection refused")
	})
}

func TestErrorRendersParseErrorsRedacted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{"postgres://app:s3cr3t@db:abc/erp", "cannot parse `postgres://app:xxxxx@db:abc/erp`: invalid port"},
		{"postgres://app:s3cr3t", "cannot parse `postgres://app:xxxxx`: invalid port"},
		{"postgres://app:s3cr3t@db/erp?sslmode=bogus", "cannot parse `postgres://app:xxxxx@db/erp?sslmode=bogus`: failed to configure TLS (sslmode is invalid)"},
		// pgx reads the database name "ss%zz@h/db" and quotes it.
		{"postgres://u:pa/ss%zz@h/db", "cannot parse `postgres://u:xxxxx@h/db`: failed to parse as URL (invalid percent-encoded token: \"xxxxx\")"},
		{"host=h password=my secret", "cannot parse `host=h password=xxxxx`: failed to parse as keyword/value (invalid keyword/value)"},
	} {
		_, err := pgconn.ParseConfig(tc.raw)
		require.Error(t, err, tc.raw)
		err = secret.Error(fmt.Errorf("open: %w", err))
		require.EqualError(t, err, "open: "+tc.want, tc.raw)
		var pce *pgconn.ParseConfigError
		require.False(t, errors.As(err, &pce), "the ParseConfigError (and its ConnString) is out of the chain")
	}
}

func TestErrorMasksParams(t *testing.T) {
	t.Parallel()
	pgErr := &pgconn.PgError{Severity: "ERROR", Code: "22P02", Message: `invalid input syntax for type integer: "not-a-number"`}
	err := secret.Error(fmt.Errorf("query: %w", pgErr), "not-a-number", "ab")
	require.EqualError(t, err, `query: ERROR: invalid input syntax for type integer: "xxxxx" (SQLSTATE 22P02)`)
	require.ErrorIs(t, err, pgErr)
	require.NoError(t, secret.Error(nil))
}

func TestMaskValues(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a xxxxx b xxxxx c xxxxx d 12", secret.MaskValues("a p w/x b p%20w%2Fx c p+w%2Fx d 12", []string{"p w/x", "12"}))
	require.Equal(t, "x", secret.MaskValues("x", nil))
	require.True(t, strings.HasPrefix(secret.Mask, "x"))
}
