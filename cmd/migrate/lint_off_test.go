//go:build !migratelint

package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLintCommandNeedsTheTag(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"lint"}, func(string) string { return "" }, &stdout, &stderr)
	require.Equal(t, exitFail, code)
	require.Empty(t, stdout.String())
	require.Equal(t, "migrate: lint: this migrate was built without the linter (PostgreSQL's parser, C code built with cgo): "+
		"run make migrate-lint, or go run -tags migratelint ./cmd/migrate lint\n", stderr.String())
}
