// Package gomigrations holds the Go migrations of db/migrations: the files
// `migrate create NAME go` writes here, numbered together with the SQL
// files one directory up, for what SQL cannot say (a backfill computed in
// Go). cmd/migrate compiles them in and runs them with the SQL ones, in
// version order. With none, the package is this file alone.
//
// Each migration file registers itself:
//
//	var _ = register(goose.NewGoMigration(12, up, down))
//
// Its Up and Down run in a transaction (goose.GoFunc.RunTx), as a SQL file
// does; cmd/migrate runs migrations on one connection, so RunDB is not for
// here.
package gomigrations

import (
	"path"
	"path/filepath"
	"runtime"

	"github.com/pressly/goose/v3"
)

// registered holds the migrations of this package, filled while it
// initialises (package-level vars) and read-only after.
var registered []*goose.Migration

// All returns the Go migrations of this package, for
// migrate.WithGoMigrations. Each call returns new copies: goose fills in
// fields of the migrations it is given.
func All() []*goose.Migration {
	out := make([]*goose.Migration, len(registered))
	for i, m := range registered {
		c := *m
		out[i] = &c
	}
	return out
}

// register adds m, named after the file that calls it (what status shows).
// Each migration file calls it; with none there is no caller.
//
//nolint:unused // called by the migration files
func register(m *goose.Migration) *goose.Migration {
	if _, file, _, ok := runtime.Caller(1); ok {
		m.Source = path.Base(filepath.ToSlash(file))
	}
	registered = append(registered, m)
	return m
}
