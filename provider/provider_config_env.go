package provider

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// EnvVars lists every variable the provider reads, with the database
// prefix shown as DB_<NAME>_ ("DB_<NAME>_POOL_MAX_CONNS").
func EnvVars() []string {
	var vars []string
	for _, p := range envParams(&Config{}, "") {
		vars = append(vars, p.Key)
	}
	for _, p := range envParams(&DatabaseConfig{}, "DB_<NAME>_") {
		vars = append(vars, p.Key)
	}
	return vars
}

// ignoredVar is a variable that looks meant for the provider but is not
// read: worth a warning.
type ignoredVar struct{ key, reason string }

// ignoredVars finds DB_<NAME>_* variables that are not read: a typo
// (DB_MAIN_POOL_MAXCONNS) or a name missing from DB_NAMES.
func ignoredVars(names []string, environ map[string]string) []ignoredVar {
	suffixes := map[string]bool{}
	for _, p := range envParams(&DatabaseConfig{}, "") {
		suffixes[p.Key] = true
	}
	var out []ignoredVar
	for key := range environ {
		rest, ok := strings.CutPrefix(key, "DB_")
		if !ok {
			continue
		}
		var reason string
		read := false
		for _, n := range names {
			if suffix, ok := strings.CutPrefix(rest, strings.ToUpper(n)+"_"); ok {
				if suffixes[suffix] {
					read = true // DB_MAIN_MIGRATE_URL, not DB_<MAIN_MIGRATE>_URL
				} else {
					reason = "not a variable of database " + n
				}
			}
		}
		if read {
			continue
		}
		for suffix := range suffixes {
			name, ok := strings.CutSuffix(rest, "_"+suffix)
			if ok && name != "" && !slices.Contains(names, strings.ToLower(name)) {
				reason = strings.ToLower(name) + " is not in DB_NAMES"
			}
		}
		if reason != "" {
			out = append(out, ignoredVar{key, reason})
		}
	}
	slices.SortFunc(out, func(a, b ignoredVar) int { return strings.Compare(a.key, b.key) })
	return out
}

// envPrefix is the variable prefix of a database: DB_<NAME>_.
func envPrefix(name string) string { return "DB_" + strings.ToUpper(name) + "_" }

// parseEnv fills v from environ with caarlos0/env and turns its parse errors
// into problems naming the variable. It returns the variables that failed.
func parseEnv(v any, prefix string, environ map[string]string, problems *[]error) map[string]bool {
	bad := map[string]bool{}
	err := env.ParseWithOptions(v, env.Options{Prefix: prefix, Environment: environ})
	if err == nil {
		return bad
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		*problems = append(*problems, fmt.Errorf("read environment: %w", err))
		return bad
	}
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			*problems = append(*problems, fmt.Errorf("read environment: %w", e))
			continue
		}
		key := fieldKey(v, pe.Name, prefix)
		bad[key] = true
		raw := environ[key]
		var want string
		switch pe.Type {
		case reflect.TypeFor[time.Duration]():
			want = "a duration such as 5s, 250ms or 1m30s"
		case reflect.TypeFor[bool]():
			want = "true or false"
		default:
			want = "an integer"
		}
		*problems = append(*problems, varErr(key, "must be %s, got %q", want, raw))
	}
	return bad
}

// envParams lists the variables of the config struct v points to, as
// caarlos0/env reads them under prefix (key, default).
func envParams(v any, prefix string) []env.FieldParams {
	ps, err := env.GetFieldParamsWithOptions(v, env.Options{Prefix: prefix})
	if err != nil {
		// The tags are fixed at compile time: every test would fail first.
		panic(fmt.Sprintf("provider: env tags of %T: %v", v, err))
	}
	return ps
}

// fieldKey is the variable env reads for the field named field of the
// struct v points to (env's ParseError names the field, not the variable).
func fieldKey(v any, field, prefix string) string {
	sf, ok := reflect.TypeOf(v).Elem().FieldByName(field)
	if !ok {
		return prefix + field
	}
	one := reflect.New(reflect.StructOf([]reflect.StructField{{Name: sf.Name, Type: sf.Type, Tag: sf.Tag}}))
	if ps := envParams(one.Interface(), prefix); len(ps) == 1 {
		return ps[0].Key
	}
	return prefix + field
}

// lineBreaks escapes what would break a problem over several lines.
var lineBreaks = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\v", `\v`, "\f", `\f`, "\u2028", `\u2028`, "\u2029", `\u2029`)

// oneLine is a problem printed on one line, whatever values it quotes (a
// DB_MAIN_SSLMODE with a line break in it), as ErrConfig's "one per line"
// promises.
type oneLine struct{ error }

func (e oneLine) Error() string { return lineBreaks.Replace(e.error.Error()) }
func (e oneLine) Unwrap() error { return e.error }

// varErr is a configuration problem naming its variable.
func varErr(key, format string, args ...any) error {
	return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
}
