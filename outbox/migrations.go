package outbox

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/cortexerp/datalayer/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// VersionTable is where [Migrate] records the outbox's applied migrations
// (and, in VersionTable_checksums, their checksums), apart from the
// application's goose_db_version.
const VersionTable = "outbox_goose_db_version"

// Migrations returns the outbox's goose migrations (00001_outbox.sql …) at
// the root of the FS. Run them with [Migrate], or with migrate.Open and
// migrate.WithVersionTable(VersionTable).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists: a build error otherwise
	}
	return sub
}

// Migrate applies the outbox's pending migrations to the database at url,
// with the version table [VersionTable]; opts are the kit's migrate options
// (WithTableLock behind PgBouncer, WithLogger, …).
func Migrate(ctx context.Context, url string, opts ...migrate.Option) error {
	m, err := migrate.Open(ctx, url, Migrations(), append(opts, migrate.WithVersionTable(VersionTable))...)
	if err != nil {
		return fmt.Errorf("outbox migrate: %w", err)
	}
	defer func() { _ = m.Close() }()
	if _, err := m.Up(ctx); err != nil {
		return fmt.Errorf("outbox migrate: %w", err)
	}
	return nil
}

// MigrateDB is [Migrate] on a *sql.DB the caller owns and keeps open.
func MigrateDB(ctx context.Context, db *sql.DB, opts ...migrate.Option) error {
	m, err := migrate.New(db, Migrations(), append(opts, migrate.WithVersionTable(VersionTable))...)
	if err != nil {
		return fmt.Errorf("outbox migrate: %w", err)
	}
	if _, err := m.Up(ctx); err != nil {
		return fmt.Errorf("outbox migrate: %w", err)
	}
	return nil
}
