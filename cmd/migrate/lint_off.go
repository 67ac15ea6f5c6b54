//go:build !migratelint

package main

import (
	"context"
	"errors"
)

// runLint, in a migrate built without the migratelint tag, says how to get
// the linter: PostgreSQL's parser is C code that cgo compiles, which takes
// minutes the first time, so the default build leaves it out.
func runLint(context.Context, *session) error {
	return errors.New("lint: this migrate was built without the linter (PostgreSQL's parser, C code built with cgo): " +
		"run make migrate-lint, or go run -tags migratelint ./cmd/migrate lint")
}
