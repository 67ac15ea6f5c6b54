package migrate

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"slices"

	"github.com/pressly/goose/v3"

	"github.com/cortexerp/datalayer/internal/goosesplit"
)

// Planned is one migration [Migrator.PlanUp] says Up would apply.
type Planned struct {
	// Version is the migration's number.
	Version int64
	// File is its file name ("" for a Go migration without one).
	File string
	// Go reports a Go migration: what it sends is known only when its code
	// runs, so Statements is empty.
	Go bool
	// Transaction reports that the migration runs in one transaction;
	// false for a -- +goose NO TRANSACTION file, whose statements each
	// commit on their own.
	Transaction bool
	// Statements are the SQL statements of its Up section, in the order Up
	// sends them (BEGIN and COMMIT not included). Under EnvSub their ${VAR}
	// are as written.
	Statements []string
	// EnvSub reports a file with -- +goose ENVSUB ON: Up fills its ${VAR}
	// from the environment, but Statements keep them as written, so that a
	// value from the environment (a password) never shows in a plan.
	EnvSub bool
}

// Plan is what Up would do: [Migrator.PlanUp]'s answer.
type Plan struct {
	// Version is the database's version now (0 on a fresh database).
	Version int64
	// Migrations are the migrations Up would apply, in order.
	Migrations []Planned
}

// PlanUp returns the migrations Up would apply, in the order it would apply
// them, each with its SQL, and changes nothing: it reads the version and
// checksum tables (a fresh database has neither), takes no lock (a
// migration running meanwhile is not waited for), and parses the files
// with goose's own parser. It fails as Up would on a changed applied file
// ([ErrDrift], unless [WithAcceptDrift]) or an older migration never applied
// ([ErrMissing], unless [WithAllowMissing]).
func (m *Migrator) PlanUp(ctx context.Context) (Plan, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	plan, err := m.planUp(ctx)
	if err != nil {
		return Plan{}, m.wrap("up (dry run)", err)
	}
	return plan, nil
}

func (m *Migrator) planUp(ctx context.Context) (Plan, error) {
	applied, err := appliedSet(ctx, m.db, m.cfg.versionTable)
	if err != nil {
		return Plan{}, err
	}
	sumTable := m.cfg.versionTable + checksumSuffix
	recorded := map[int64]string{}
	var exists bool
	if err := m.db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", sumTable).Scan(&exists); err != nil {
		return Plan{}, fmt.Errorf("read checksums: %w", err)
	}
	if exists {
		if recorded, err = recordedSums(ctx, m.db, sumTable); err != nil {
			return Plan{}, err
		}
	}
	var current int64
	for v := range applied {
		current = max(current, v)
	}
	sources := m.p.ListSources()
	slices.SortFunc(sources, func(a, b *goose.Source) int { return cmp.Compare(a.Version, b.Version) })
	var (
		drifts  []Drift
		missing []string
		pending []*goose.Source
	)
	for _, s := range sources {
		switch {
		case applied[s.Version]:
			if sum, was := fileSum(m.fsys, s), recorded[s.Version]; sum != "" && was != "" && sum != was {
				drifts = append(drifts, Drift{File: sourceLabel(s), Recorded: was, Current: sum})
			}
		case s.Version < current:
			missing = append(missing, sourceLabel(s))
			pending = append(pending, s)
		default:
			pending = append(pending, s)
		}
	}
	if len(drifts) > 0 && !m.cfg.acceptDrift {
		return Plan{}, &DriftError{Drifts: drifts}
	}
	if len(missing) > 0 && !m.cfg.allowMissing {
		return Plan{}, &missingError{files: missing, current: current}
	}
	plan := Plan{Version: current, Migrations: make([]Planned, 0, len(pending))}
	for _, s := range pending {
		p := Planned{Version: s.Version, File: baseName(s.Path), Go: s.Type == goose.TypeGo}
		if !p.Go {
			if p.Statements, p.Transaction, p.EnvSub, err = sqlStatements(ctx, m.fsys, s.Path, goosesplit.AsWritten); err != nil {
				return Plan{}, fmt.Errorf("%s: %w", p.File, goosesplit.Cause(err, s.Path))
			}
		}
		plan.Migrations = append(plan.Migrations, p)
	}
	return plan, nil
}

// sqlStatements returns the Up statements of one SQL migration, as goose
// would send them, whether it runs them in a transaction, and whether the
// file substitutes ${VAR} from the environment (-- +goose ENVSUB ON); env
// says whether to substitute them or leave them as written (for a plan,
// where a value from the environment, a password, must never show).
func sqlStatements(ctx context.Context, fsys fs.FS, file string, env goosesplit.Env) ([]string, bool, bool, error) {
	m, err := goosesplit.Split(ctx, fsys, file, true, env)
	if err != nil {
		return nil, false, false, err
	}
	stmts := make([]string, len(m.Statements))
	for i, st := range m.Statements {
		stmts[i] = st.SQL
	}
	return stmts, m.Tx, m.EnvSub, nil
}
