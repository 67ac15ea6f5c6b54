package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/internal/secret/secrettest"
)

// fuzzMarker: see secrettest.
const fuzzMarker = secrettest.Marker

var withoutMarker = secrettest.Strip

// Where FuzzLoadConfig puts the password.
const (
	pwVar         = iota // DB_<NAME>_PASSWORD
	pwDatabaseURL        // DATABASE_URL's user info, encoded
	pwURLParam           // DB_<NAME>_URL's password parameter, encoded
	pwReplica            // DB_<NAME>_REPLICA_URLS, second URL's user info, encoded
	pwRawURL             // DB_<NAME>_URL's user info, not encoded
	pwFile               // DB_<NAME>_PASSWORD_FILE
	pwPlaces
)

// urlEncode: see secrettest.Encode.
var urlEncode = secrettest.Encode

// fuzzEnviron builds an environment from env (KEY=VALUE lines, \n in a
// value for a line break), names (DB_NAMES) and a password placed as where
// says, with the marker at pos in it. Password files are written into dir: a
// fuzzed DB_<NAME>_PASSWORD_FILE names a file there, so that no device or
// stranger's file is ever read.
func fuzzEnviron(dir, env, names, user, host, password string, where, pos uint8) map[string]string {
	environ := map[string]string{}
	for line := range strings.SplitSeq(withoutMarker(env), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			v = strings.ReplaceAll(v, `\n`, "\n")
			if strings.HasSuffix(k, "_PASSWORD_FILE") && v != "" {
				v = filepath.Join(dir, "missing-"+urlEncode(v))
			}
			environ[k] = v
		}
	}
	if names = withoutMarker(names); names != "" {
		environ["DB_NAMES"] = names
	}
	prefix := envPrefix(firstName(environ))
	user, host = withoutMarker(user), withoutMarker(host)
	i := int(pos) % (len(password) + 1)
	pw := password[:i] + fuzzMarker + password[i:]
	switch where % pwPlaces {
	case pwVar:
		environ[prefix+"PASSWORD"] = pw
	case pwDatabaseURL:
		environ["DATABASE_URL"] = "postgres://" + urlEncode(user) + ":" + urlEncode(pw) + "@" + urlEncode(host) + "/db"
	case pwURLParam:
		environ[prefix+"URL"] = "postgresql://" + urlEncode(user) + "@" + urlEncode(host) + "/db?sslmode=disable&password=" + urlEncode(pw)
	case pwReplica:
		environ[prefix+"REPLICA_URLS"] = environ[prefix+"REPLICA_URLS"] + ",postgres://" + urlEncode(user) + ":" + urlEncode(pw) + "@" + urlEncode(host) + "/db"
	case pwRawURL:
		environ[prefix+"URL"] = "postgres://" + user + ":" + pw + "@" + host + "/db"
	case pwFile:
		path := filepath.Join(dir, "password")
		if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
			panic(err)
		}
		environ[prefix+"PASSWORD_FILE"] = path
	}
	return environ
}

// addresses are the pointers %#v prints.
var addresses = regexp.MustCompile(`0x[0-9a-f]+`)

// problemVar is how every problem starts: the variable to fix.
var problemVar = regexp.MustCompile(`^(DATABASE_URL|DB_NAMES|DB_LOG_LEVEL|DB_SLOW_QUERY|DB_LOG_PARAMS|DB_([A-Z][A-Z0-9_]*)_([A-Z_]+)(\[\d+\])?(/[A-Z/]+)?): \S`)

// printed is everything LoadConfig's results print: the error and the
// configuration through fmt, slog and JSON.
func printed(cfg Config, ignored []ignoredVar, err error) string {
	var b bytes.Buffer
	if err != nil {
		fmt.Fprintf(&b, "%v|%+v|%#v|", err, err, err)
	}
	fmt.Fprintf(&b, "%v|%+v|%#v|", cfg, cfg, cfg)
	for _, d := range cfg.Databases {
		fmt.Fprintf(&b, "%v|%+v|%#v|", d, d, d)
	}
	noTime := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	slog.New(slog.NewTextHandler(&b, noTime)).Info("cfg", "cfg", cfg)
	slog.New(slog.NewJSONHandler(&b, noTime)).Info("cfg", "cfg", cfg)
	js, _ := json.Marshal(cfg)
	b.Write(js)
	fmt.Fprintf(&b, "%v", ignored)
	return b.String()
}

// FuzzLoadConfig feeds loadConfig (parsing and validation, no pool is opened)
// arbitrary variables, DB_NAMES and a password in one of the places a
// password goes. It never panics; every problem is one line that starts with
// the variable to fix; the password shows nowhere in the error, the
// configuration's %v/%+v/%#v, slog or JSON, or the ignored variables; and
// what is printed does not depend on the password at all.
func FuzzLoadConfig(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, env, names, user, host, password string, where, pos uint8) {
		environ := fuzzEnviron(dir, env, names, user, host, password, where, pos)
		cfg, ignored, err := loadConfig(environ)
		out := printed(cfg, ignored, err)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error does not wrap ErrConfig: %v", err)
			}
			if !strings.HasPrefix(err.Error(), ErrConfig.Error()+":\n") {
				t.Fatalf("error does not start with %q: %q", ErrConfig.Error()+":\n", err.Error())
			}
			for _, p := range problems(err) {
				if strings.ContainsAny(p.Error(), "\n\r\v\f\u2028\u2029") {
					t.Fatalf("a problem spans lines: %q", p.Error())
				}
				if !problemVar.MatchString(p.Error()) {
					t.Fatalf("a problem does not start with its variable: %q", p.Error())
				}
			}
		}
		raw := where%pwPlaces == pwRawURL
		if raw {
			// Unencoded, the password may end up anywhere (host, path):
			// only when the URL is read with it as its password must it hide.
			u, perr := secret.Parse(environ[envPrefix(firstName(environ))+"URL"])
			if perr == nil && !strings.Contains(u.Password, fuzzMarker) {
				return
			}
		}
		if strings.Contains(out, fuzzMarker) {
			t.Fatalf("the password shows:\n%s", out)
		}
		if raw {
			return
		}
		// Nothing printed depends on the password: another one of the same
		// length (NULs and line ends kept: they are what validation sees)
		// prints the same.
		same := strings.Map(func(r rune) rune {
			if r == 0 || r == '\r' || r == '\n' {
				return r
			}
			return 'p'
		}, password)
		other := fuzzEnviron(dir, env, names, user, host, same, where, pos)
		cfg2, ignored2, err2 := loadConfig(other)
		if out, out2 := addresses.ReplaceAllString(out, "0x…"), addresses.ReplaceAllString(printed(cfg2, ignored2, err2), "0x…"); out2 != out {
			t.Fatalf("what is printed depends on the password:\n%s\n%s", out, out2)
		}
	})
}

// firstName is the first valid name of DB_NAMES, or main.
func firstName(environ map[string]string) string {
	for n := range strings.SplitSeq(environ["DB_NAMES"], ",") {
		if n = strings.ToLower(strings.TrimSpace(n)); validName.MatchString(n) {
			return n
		}
	}
	return mainName
}

// problems returns the problems joined in a loadConfig error.
func problems(err error) []error {
	w, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	for _, e := range w.Unwrap() {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			return j.Unwrap()
		}
	}
	return nil
}
