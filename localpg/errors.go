package localpg

import "errors"

// ErrNoServer is wrapped by the error of [Start] when no source could provide
// a server; the message says what to install or which variable to set.
var ErrNoServer = errors.New("localpg: no PostgreSQL server found")

// ErrNotSupported is returned by [Server.Halt] and [Server.Resume] for a server
// that localpg did not start from binaries.
var ErrNotSupported = errors.New("localpg: only a server started from binaries supports this")

// ErrStopped is returned by [Server.Halt] and [Server.Resume] after [Server.Stop].
var ErrStopped = errors.New("localpg: server stopped")
