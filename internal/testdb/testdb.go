// Package testdb is the kit's one glue to pgtestdb, shared by dbtest and the
// bench: the pgtestdb configuration of a server, the migrator that migrates a
// template with the kit's migrate package, a pgtestdb.TB for code that is not
// a test, and the get-or-create of a migrated template.
//
// Everything here is safe for concurrent use, except a [TB], which belongs to
// one caller.
package testdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver pgtestdb connects with
	"github.com/peterldowns/pgtestdb"

	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/migrate"
)

// Config returns the pgtestdb configuration of the server at raw (a
// postgres:// URL or a keyword/value string), connecting as its user with
// the "pgx" driver. Its error never holds the password.
func Config(raw string) (pgtestdb.Config, error) {
	c := pgtestdb.Config{DriverName: "pgx"}
	if u, err := url.Parse(raw); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.Host != "" {
		// pgtestdb pastes these into a URL unescaped: escape them here.
		c.User = url.PathEscape(u.User.Username())
		if p, ok := u.User.Password(); ok {
			c.Password = url.PathEscape(p)
		}
		c.Host, c.Port = u.Hostname(), u.Port()
		c.Database = strings.TrimPrefix(u.Path, "/")
		c.Options = u.RawQuery
	} else {
		pc, err := pgconn.ParseConfig(raw)
		if err != nil {
			return c, errors.New("the server's connection string is not valid")
		}
		c.User, c.Password = url.PathEscape(pc.User), url.PathEscape(pc.Password)
		c.Host, c.Port, c.Database = pc.Host, fmt.Sprint(pc.Port), pc.Database
		c.Options = "sslmode=disable"
		if pc.TLSConfig != nil {
			c.Options = "sslmode=require"
		}
	}
	if strings.Contains(c.Host, ":") {
		c.Host = "[" + c.Host + "]"
	}
	if c.Port == "" {
		c.Port = "5432"
	}
	if c.Database == "" {
		c.Database = "postgres"
	}
	return c, nil
}

// RoleURL returns the URL of database name on base's server as pgtestdb's
// default role, the owner of the templates and of their clones. It carries
// the role's password: do not log it.
func RoleURL(base pgtestdb.Config, name string) string {
	role := pgtestdb.DefaultRole()
	base.User, base.Password, base.Database = role.Username, role.Password, name
	return base.URL()
}

// Migrator is the pgtestdb.Migrator of one or more sets of goose
// migrations: it migrates a template up with the kit's migrate package, one
// set after the other, each with its version table.
type Migrator struct {
	sets []Set
	key  string
}

// Set is one set of goose migrations (the files at the root of FS) and the
// table its versions are kept in ("" for migrate's default,
// goose_db_version).
type Set struct {
	FS           fs.FS
	VersionTable string
}

var _ pgtestdb.Migrator = Migrator{}

// NewMigrator returns the migrator of the migrations at the root of fsys,
// keyed by prefix and [migrate.Hash] of the files, so that a template is
// migrated once per prefix and change.
func NewMigrator(fsys fs.FS, prefix string) (Migrator, error) {
	return NewSetsMigrator(prefix, Set{FS: fsys})
}

// NewSetsMigrator returns the migrator of sets, applied in order, keyed by
// prefix and a hash over every set's [migrate.Hash] and version table, so
// that a change to any set, its version table or the order gives another
// template. One set with the default table has [NewMigrator]'s key.
func NewSetsMigrator(prefix string, sets ...Set) (Migrator, error) {
	if len(sets) == 0 {
		return Migrator{}, errors.New("no migration sets")
	}
	sum := sha256.New()
	var key string
	for _, set := range sets {
		hash, err := migrate.Hash(set.FS)
		if err != nil {
			return Migrator{}, err
		}
		key = hash
		// Length prefixes keep the fields of consecutive sets apart.
		for _, field := range []string{set.VersionTable, hash} {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(field)))
			sum.Write(n[:])
			sum.Write([]byte(field))
		}
	}
	if len(sets) > 1 || sets[0].VersionTable != "" {
		key = hex.EncodeToString(sum.Sum(nil))
	}
	return Migrator{sets: slices.Clone(sets), key: prefix + key}, nil
}

// Hash returns the key the template is named after.
func (m Migrator) Hash() (string, error) { return m.key, nil }

// Migrate applies every migration of every set to db, set after set.
func (m Migrator) Migrate(ctx context.Context, db *sql.DB, _ pgtestdb.Config) error {
	for _, set := range m.sets {
		var opts []migrate.Option
		if set.VersionTable != "" {
			opts = append(opts, migrate.WithVersionTable(set.VersionTable))
		}
		if err := up(ctx, db, set.FS, opts); err != nil {
			if set.VersionTable != "" {
				return fmt.Errorf("migrations of version table %s: %w", set.VersionTable, err)
			}
			return err
		}
	}
	return nil
}

func up(ctx context.Context, db *sql.DB, fsys fs.FS, opts []migrate.Option) error {
	mg, err := migrate.New(db, fsys, opts...)
	if err != nil {
		return err
	}
	defer func() { _ = mg.Close() }()
	_, err = mg.Up(ctx)
	return err
}

// TB is the pgtestdb.TB of code that is not a test: Fatalf ends the
// goroutine [TB.Run] started, as testing's does, and Run returns the
// failure; Logf drops pgtestdb's log lines (they quote the role's password).
type TB struct {
	cleanups []func()
	failed   bool
	msg      string
}

var _ pgtestdb.TB = (*TB)(nil)

// Cleanup registers f for [TB.Finish].
func (t *TB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

// Failed reports whether Fatalf was called.
func (t *TB) Failed() bool { return t.failed }

// Helper does nothing.
func (t *TB) Helper() {}

// Logf drops the line.
func (t *TB) Logf(string, ...any) {}

// Fatalf records the failure, its passwords masked, and ends the goroutine.
func (t *TB) Fatalf(format string, args ...any) {
	t.failed = true
	t.msg = secret.Text(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// Run calls f on a goroutine of its own, so that Fatalf can end it, and
// returns f's result or the failure.
func (t *TB) Run(f func() *pgtestdb.Config) (*pgtestdb.Config, error) {
	var c *pgtestdb.Config
	done := make(chan struct{})
	go func() {
		defer close(done)
		c = f()
	}()
	<-done
	if t.failed {
		return nil, errors.New(t.msg)
	}
	return c, nil
}

// Finish runs the cleanups, last registered first, on a goroutine of their
// own, so that a Fatalf in one (a drop that fails) ends only that goroutine;
// Failed then reports it.
func (t *TB) Finish() {
	cleanups := t.cleanups
	t.cleanups = nil
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	<-done
}

// Template gets or creates, through pgtestdb, the template that m migrates
// on base's server, with pgtestdb's role, and returns its name. pgtestdb
// makes it once per process and, under an advisory lock, once per server;
// the instance it clones on the way is dropped before Template returns.
func Template(base pgtestdb.Config, m pgtestdb.Migrator) (string, error) {
	tb := &TB{}
	inst, err := tb.Run(func() *pgtestdb.Config { return pgtestdb.Custom(tb, base, m) })
	tb.Finish()
	if err == nil && tb.Failed() {
		err = fmt.Errorf("drop the instance pgtestdb made with the template: %s", tb.msg)
	}
	if err != nil {
		return "", err
	}
	name, _, ok := strings.Cut(inst.Database, "_inst_")
	if !ok {
		return "", fmt.Errorf("pgtestdb named its instance %q, not <template>_inst_<id>", inst.Database)
	}
	return name, nil
}
