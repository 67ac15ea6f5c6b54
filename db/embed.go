// Package db holds the application's SQL: goose migrations and sqlc queries.
//
// It is the part of the template a team replaces with its own schema. Nothing
// here imports Go code; sqlc reads the same files to generate package dbgen.
package db

import (
	"embed"
	"io/fs"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the migrations directory as an fs.FS rooted at the migration
// files (00001_….sql at its top level), ready for migrate.New.
var Migrations fs.FS = mustSub(migrations, "migrations")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
