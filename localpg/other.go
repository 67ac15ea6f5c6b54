//go:build !unix

package localpg

import (
	"context"
	"runtime"
)

// postmaster is unavailable off Unix; its methods are never called.
type postmaster struct{}

func (*postmaster) halt(context.Context) error   { return ErrNotSupported }
func (*postmaster) resume(context.Context) error { return ErrNotSupported }
func (*postmaster) stop(context.Context) error   { return nil }

func startBinaries(context.Context, *config) (*Server, string, error) {
	return nil, "local binaries are supported on Unix only, not " + runtime.GOOS, nil
}

func untrack(*Server) {}

func (*postmaster) url() string { return "" }

func (*postmaster) newStandby(context.Context, string, standbyConfig) (*postmaster, error) {
	return nil, ErrNotSupported
}
