// Package execmode is the one list of pgx's query exec modes, under the
// names DB_<NAME>_EXEC_MODE and pgx's default_query_exec_mode URL parameter
// use (cache_statement, …). provider parses with it; tests that run in every
// mode range over [All].
package execmode

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// Mode is one exec mode and its name.
type Mode struct {
	// Name is the mode as written in configuration: cache_statement,
	// cache_describe, describe_exec, exec or simple_protocol.
	Name string
	// Mode is pgx's value.
	Mode pgx.QueryExecMode
}

// all lists the modes in pgx's order, the default first.
var all = []Mode{
	{"cache_statement", pgx.QueryExecModeCacheStatement},
	{"cache_describe", pgx.QueryExecModeCacheDescribe},
	{"describe_exec", pgx.QueryExecModeDescribeExec},
	{"exec", pgx.QueryExecModeExec},
	{"simple_protocol", pgx.QueryExecModeSimpleProtocol},
}

// All returns every exec mode, the default (cache_statement) first. The
// slice is a copy: callers may change it.
func All() []Mode { return append([]Mode(nil), all...) }

// Names returns the modes' names in the order of [All].
func Names() []string {
	names := make([]string, len(all))
	for i, m := range all {
		names[i] = m.Name
	}
	return names
}

// Parse returns the mode named name, matched case-insensitively after
// trimming spaces; ok is false for an unknown name.
func Parse(name string) (mode pgx.QueryExecMode, ok bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, m := range all {
		if m.Name == name {
			return m.Mode, true
		}
	}
	return 0, false
}
