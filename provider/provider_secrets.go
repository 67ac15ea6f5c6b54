package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cortexerp/datalayer/internal/secret"
)

// parseURL checks a connection URL and splits its password out (from the
// user info or a password= parameter), so that pgx never sees it: pgx's
// parse errors and configs would otherwise carry it. Errors never quote the
// URL.
func parseURL(raw string) (secret.ConnString, error) {
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return secret.ConnString{}, errors.New("must be a postgres:// or postgresql:// URL (key=value strings are not accepted)")
	}
	return secret.Parse(raw)
}

// discreteURL builds a password-less URL from HOST, PORT, USER, DBNAME and
// SSLMODE.
func discreteURL(c DatabaseConfig) string {
	dbname := c.DBName
	if dbname == "" {
		dbname = c.User
	}
	q := url.Values{}
	q.Set("host", c.Host) // a query parameter also takes a socket directory
	q.Set("port", strconv.Itoa(c.Port))
	q.Set("sslmode", c.SSLMode)
	u := url.URL{Scheme: "postgres", User: url.User(c.User), Path: "/" + dbname}
	// pgx decodes %20, not '+'.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// The methods below keep passwords out of fmt (%v, %+v, %#v), slog and JSON.
type (
	plainConfig         Config
	plainDatabaseConfig DatabaseConfig
)

func (c DatabaseConfig) redacted() plainDatabaseConfig {
	c.URL = secret.Redact(c.URL)
	c.MigrateURL = secret.Redact(c.MigrateURL)
	if c.Password != "" {
		c.Password = secret.Mask
	}
	if c.migratePassword != "" {
		c.migratePassword = secret.Mask
	}
	c.ReplicaURLs = slices.Clone(c.ReplicaURLs)
	for i, r := range c.ReplicaURLs {
		c.ReplicaURLs[i] = secret.Redact(r)
	}
	return plainDatabaseConfig(c)
}

// String formats c with its passwords masked.
func (c DatabaseConfig) String() string { return fmt.Sprintf("%+v", c.redacted()) }

// GoString formats c for %#v with its passwords masked.
func (c DatabaseConfig) GoString() string {
	return "provider.DatabaseConfig" + strings.TrimPrefix(fmt.Sprintf("%#v", c.redacted()), "provider.plainDatabaseConfig")
}

// LogValue implements slog.LogValuer with the passwords masked.
func (c DatabaseConfig) LogValue() slog.Value { return slog.AnyValue(c.redacted()) }

// MarshalJSON encodes c with its passwords masked.
func (c DatabaseConfig) MarshalJSON() ([]byte, error) { return json.Marshal(c.redacted()) }

func (c Config) redacted() plainConfig {
	c.DatabaseURL = secret.Redact(c.DatabaseURL)
	// Databases print through DatabaseConfig's own redacting methods.
	return plainConfig(c)
}

// String formats c with its passwords masked.
func (c Config) String() string { return fmt.Sprintf("%+v", c.redacted()) }

// GoString formats c for %#v with its passwords masked.
func (c Config) GoString() string {
	return "provider.Config" + strings.TrimPrefix(fmt.Sprintf("%#v", c.redacted()), "provider.plainConfig")
}

// LogValue implements slog.LogValuer with the passwords masked.
func (c Config) LogValue() slog.Value {
	p := c.redacted()
	dbs := make([]plainDatabaseConfig, len(p.Databases))
	for i, d := range p.Databases {
		dbs[i] = d.redacted()
	}
	return slog.GroupValue(
		slog.Any("names", p.Names),
		slog.String("database_url", p.DatabaseURL),
		slog.String("log_level", p.LogLevel),
		slog.Duration("slow_query", p.SlowQuery),
		slog.Bool("log_params", p.LogParams),
		slog.Any("databases", dbs),
	)
}

// MarshalJSON encodes c with its passwords masked.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.redacted()) }
