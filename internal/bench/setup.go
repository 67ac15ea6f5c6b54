package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver pgtestdb connects with
	"github.com/peterldowns/pgtestdb"

	"github.com/cortexerp/datalayer/db"
	"github.com/cortexerp/datalayer/internal/secret"
	"github.com/cortexerp/datalayer/internal/testdb"
	"github.com/cortexerp/datalayer/migrate"
)

// setupResult compares two ways of getting a migrated database for a test.
// Each way ends with an open, pinged pool on the new database.
type setupResult struct {
	// Reps is how many databases each way made.
	Reps int
	// Migrations is the number of migrations in the schema.
	Migrations int
	// FirstClone is the first dbtest-style call, which also created and
	// migrated the template (once per schema and server).
	FirstClone time.Duration
	// Clone is the median dbtest-style call: pgtestdb clones the migrated
	// template (CREATE DATABASE … TEMPLATE), as dbtest.New does when no
	// clone made ahead is ready.
	Clone time.Duration
	// Fresh is the median of CREATE DATABASE followed by migrate up.
	Fresh time.Duration
	// MigrateUp is the median of the migrate up part of Fresh: migrate.Open,
	// Up and Close on an empty database.
	MigrateUp time.Duration
	// CreateDB is the median of the CREATE DATABASE part of Fresh.
	CreateDB time.Duration
	// BareClone is the median of a clone without pgtestdb: CREATE DATABASE
	// … TEMPLATE of the same template, then the pool; what pgtestdb adds
	// (its connections, role check and lock) is Clone minus this.
	BareClone time.Duration
	// BareCloneFileCopy is BareClone with STRATEGY FILE_COPY instead of
	// PostgreSQL 15's default WAL_LOG; 0 before PostgreSQL 15.
	BareCloneFileCopy time.Duration

	reps setupReps
}

// setupReps are the set-up times of each repetition, in order, for the
// ranges of the ratios.
type setupReps struct {
	clone, fresh, createDB, migrateUp, bare, bareFileCopy []time.Duration
}

// setup times SetupReps clones against as many fresh migrated databases,
// alternating which goes first.
func (r *run) setup(ctx context.Context, rep *Report) error {
	base, err := testdb.Config(r.srv.URL())
	if err != nil {
		return err
	}
	mig, err := testdb.NewMigrator(db.Migrations, "datalayer-bench-"+r.suffix+"-")
	if err != nil {
		return fmt.Errorf("hash migrations: %w", err)
	}
	migs, err := fs.Glob(db.Migrations, "*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	res := setupResult{Reps: r.cfg.SetupReps, Migrations: len(migs)}

	clone := func() (time.Duration, error) {
		t0 := time.Now()
		tb := &testdb.TB{}
		inst, err := tb.Run(func() *pgtestdb.Config { return pgtestdb.Custom(tb, base, mig) })
		if err == nil {
			err = openAndPing(ctx, inst.URL())
		}
		d := time.Since(t0)
		tb.Finish() // drops the clone
		if err != nil {
			return 0, secret.Error(fmt.Errorf("clone template: %w", err))
		}
		return d, nil
	}
	var clones, fresh, ups, creates, bare, fileCopy []time.Duration
	freshOne := func(i int) error {
		name := fmt.Sprintf("bench_fresh_%s_%d", r.suffix, i)
		t0 := time.Now()
		if _, err := r.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
		r.dbs = append(r.dbs, name)
		t1 := time.Now()
		url := r.srv.URLFor(name)
		if err := migrateUp(ctx, url); err != nil {
			return err
		}
		t2 := time.Now()
		if err := openAndPing(ctx, url); err != nil {
			return err
		}
		fresh = append(fresh, time.Since(t0))
		creates = append(creates, t1.Sub(t0))
		ups = append(ups, t2.Sub(t1))
		return r.dropDatabase(ctx, name)
	}
	var templateDB string
	bareOne := func(i int, strategy string, into *[]time.Duration) error {
		label := strings.ToLower(strategy)
		if label == "" {
			label = "default"
		}
		name := fmt.Sprintf("bench_clone_%s_%s_%d", r.suffix, label, i)
		sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{templateDB}.Sanitize()
		if strategy != "" {
			sql += " STRATEGY " + strategy
		}
		t0 := time.Now()
		if _, err := r.admin.Exec(ctx, sql); err != nil {
			return fmt.Errorf("clone template: %w", err)
		}
		r.dbs = append(r.dbs, name)
		if err := openAndPing(ctx, r.srv.URLFor(name)); err != nil {
			return err
		}
		*into = append(*into, time.Since(t0))
		return r.dropDatabase(ctx, name)
	}

	if err := r.ensurePgtestdbRole(ctx); err != nil {
		return err
	}
	t0 := time.Now()
	tb := &testdb.TB{}
	inst, err := tb.Run(func() *pgtestdb.Config { return pgtestdb.Custom(tb, base, mig) })
	if err != nil {
		tb.Finish()
		return secret.Error(fmt.Errorf("create template: %w", err))
	}
	templateDB, _, _ = strings.Cut(inst.Database, "_inst_")
	r.templates = append(r.templates, templateDB) // pgtestdb keeps templates; this one is ours
	err = openAndPing(ctx, inst.URL())
	res.FirstClone = time.Since(t0)
	tb.Finish()
	if err != nil {
		return secret.Error(err)
	}
	var version int
	if err := r.admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("read server version: %w", err)
	}

	for i := range r.cfg.SetupReps {
		steps := []func() error{
			func() error {
				d, err := clone()
				clones = append(clones, d)
				return err
			},
			func() error { return freshOne(i) },
			func() error { return bareOne(i, "", &bare) },
		}
		if version >= 150000 {
			steps = append(steps, func() error { return bareOne(i, "FILE_COPY", &fileCopy) })
		}
		for _, step := range rotate(steps, i) {
			if err := step(); err != nil {
				return err
			}
		}
		progress(r.cfg, "set-up %d/%d  clone %v  fresh %v (migrate up %v)", i+1, r.cfg.SetupReps,
			clones[i].Round(time.Millisecond), fresh[i].Round(time.Millisecond), ups[i].Round(time.Millisecond))
	}
	res.Clone, res.Fresh, res.MigrateUp, res.CreateDB = median(clones), median(fresh), median(ups), median(creates)
	res.BareClone, res.BareCloneFileCopy = median(bare), median(fileCopy)
	res.reps = setupReps{clone: clones, fresh: fresh, createDB: creates, migrateUp: ups, bare: bare, bareFileCopy: fileCopy}
	rep.setup = res
	return nil
}

// ensurePgtestdbRole creates pgtestdb's role on this run's server as
// pgtestdb would. pgtestdb remembers the roles it made per process, not per
// server: after a test of the same process made it on another server (dbtest
// in `go test`), it would skip this one and fail.
func (r *run) ensurePgtestdbRole(ctx context.Context) error {
	role := pgtestdb.DefaultRole()
	var exists bool
	if err := r.admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role.Username).Scan(&exists); err != nil {
		return fmt.Errorf("look up role %s: %w", role.Username, err)
	}
	if exists {
		return nil
	}
	name := pgx.Identifier{role.Username}.Sanitize()
	// The password is pgtestdb's public default, quoted as a literal.
	sql := "CREATE ROLE " + name + " WITH LOGIN PASSWORD '" + strings.ReplaceAll(role.Password, "'", "''") + "' " + role.Capabilities
	if _, err := r.admin.Exec(ctx, sql); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.DuplicateObject {
			return nil // made meanwhile by another process
		}
		return fmt.Errorf("create role %s: %w", role.Username, err)
	}
	return nil
}

// openAndPing opens a pool on url as dbtest.New does, pings it and closes it.
func openAndPing(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("open pool: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// migrateUp applies the ERP migrations to the database at url.
func migrateUp(ctx context.Context, url string) error {
	m, err := migrate.Open(ctx, url, db.Migrations)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = m.Close() }()
	if _, err := m.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
