package provider

import (
	"context"
	"errors"
	"net"
	"syscall"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrConfig is wrapped by every configuration error from New and
// LoadConfig; the joined problems follow it, one per line.
var ErrConfig = errors.New("invalid database configuration")

// ErrClosed is wrapped by the error of an Acquire (and so of every query)
// on a provider's pool once Provider.Close has begun, and reported by Health.
var ErrClosed = errors.New("provider is closed")

// ErrUnknownDatabase is wrapped by the error of Provider.DB for a name that
// is not in DB_NAMES; the message lists the known names.
var ErrUnknownDatabase = errors.New("unknown database")

// transient reports whether a failed connection attempt is worth retrying:
// connection refused or reset, a connect timeout, a Unix socket not there
// yet, or the server answering 57P03 (starting up) or 53300 (too many
// connections).
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgerrcode.CannotConnectNow || pgErr.Code == pgerrcode.TooManyConnections
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Net == "unix" && errors.Is(err, syscall.ENOENT) {
		return true
	}
	return pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded)
}

// hint tells the user which variables to check after a connection failure.
func hint(err error, c DatabaseConfig, replica int) string {
	p := envPrefix(c.Name)
	target, auth, dbname := p+"HOST and "+p+"PORT", p+"USER and "+p+"PASSWORD", p+"DBNAME"
	switch {
	case replica >= 0:
		target, auth, dbname = p+"REPLICA_URLS", p+"REPLICA_URLS and "+p+"PASSWORD", p+"REPLICA_URLS"
	case c.URL != "":
		target, auth, dbname = c.urlVar, c.urlVar+" and "+p+"PASSWORD", c.urlVar
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgerrcode.InvalidPassword, pgerrcode.InvalidAuthorizationSpecification:
			return "check the user name and password (" + auth + ")"
		case pgerrcode.InvalidCatalogName:
			return "check the database name (" + dbname + ")"
		}
		return ""
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "check the host name (" + target + ")"
	}
	if transient(err) {
		return "is the server running and reachable? check " + target + ", or raise " + p + "CONNECT_RETRIES / " + p + "CONNECT_TIMEOUT"
	}
	return ""
}
