package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"

	"github.com/cortexerp/datalayer/internal/goosesplit"

	"github.com/cortexerp/datalayer/internal/secret"
)

// wrap turns a goose error into "migrate <op>: <file>[:line]: <cause>".
func (m *Migrator) wrap(op string, err error) error {
	if le := (*lockedError)(nil); errors.As(err, &le) {
		// goose's "failed to initialize: " adds nothing to ours.
		return fmt.Errorf("migrate %s: %w", op, le)
	}
	if de := (*DriftError)(nil); errors.As(err, &de) {
		return fmt.Errorf("migrate %s: %w", op, de)
	}
	if me := (*missingError)(nil); errors.As(err, &me) {
		return fmt.Errorf("migrate %s: %w", op, me)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("migrate %s: %w", op, secret.Error(err))
	}
	var pe *goose.PartialError
	if !errors.As(err, &pe) || pe.Failed == nil || pe.Failed.Source == nil {
		return fmt.Errorf("migrate %s: %w", op, m.explain(err))
	}
	src := pe.Failed.Source
	where := baseName(src.Path)
	if where == "" {
		where = fmt.Sprintf("version %d", src.Version)
	} else if line := m.lineOf(src.Path, pe.Failed.Direction, pe.Err); line > 0 {
		where = fmt.Sprintf("%s:%d", where, line)
	}
	if report := m.noTxReport(src, pe.Failed.Direction, pe.Err); report != "" {
		return fmt.Errorf("migrate %s: %s: %w; %s", op, where, m.explain(pe.Err), report)
	}
	return fmt.Errorf("migrate %s: %s: %w", op, where, m.explain(pe.Err))
}

// noTxReport says, for a NO TRANSACTION SQL migration that failed, which of
// its statements ran (and stay: each committed on its own) and what to do
// before running it again; "" for any other migration.
func (m *Migrator) noTxReport(src *goose.Source, direction string, cause error) string {
	if src.Type != goose.TypeSQL || direction != string(DirectionUp) {
		return ""
	}
	// As sent (ENVSUB substituted), to find the failed one; only its number is reported.
	stmts, inTx, _, err := sqlStatements(context.Background(), m.fsys, src.Path, goosesplit.Substitute)
	if err != nil || inTx {
		return ""
	}
	const fix = "make the migration idempotent (IF NOT EXISTS, IF EXISTS, CREATE OR REPLACE) before running it again, or undo by hand what ran"
	failed := -1
	var pgErr *pgconn.PgError
	if m.tracer != nil && errors.As(cause, &pgErr) {
		stmt := m.tracer.failedStatement(pgErr)
		if i := slices.Index(stmts, stmt); i >= 0 && slices.Index(stmts[i+1:], stmt) < 0 {
			failed = i // a statement written twice could be either: say less
		}
	}
	switch {
	case failed < 0:
		return fmt.Sprintf("NO TRANSACTION: some of its %d statements may have run, and what ran stays applied: %s", len(stmts), fix)
	case failed == 0:
		return fmt.Sprintf("NO TRANSACTION: statement 1 of %d failed, none ran before it: fix it and run again", len(stmts))
	default:
		ran := fmt.Sprintf("statements 1-%d of %d ran and stay", failed, len(stmts))
		if failed == 1 {
			ran = fmt.Sprintf("statement 1 of %d ran and stays", len(stmts))
		}
		return fmt.Sprintf("NO TRANSACTION: %s applied (each committed on its own), statement %d failed, the rest did not run: %s",
			ran, failed+1, fix)
	}
}

// explain adds to a server error what to do about it.
func (m *Migrator) explain(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	var extra []string
	if pgErr.Detail != "" {
		extra = append(extra, "detail: "+pgErr.Detail)
	}
	if pgErr.Hint != "" {
		extra = append(extra, "hint: "+pgErr.Hint)
	}
	if pgErr.Code == pgerrcode.LockNotAvailable {
		timeout := "lock_timeout"
		if m.tracer != nil && m.cfg.lockTimeout > 0 {
			timeout = fmt.Sprintf("lock_timeout (%v)", m.cfg.lockTimeout)
		}
		extra = append(extra, timeout+" expired waiting for a lock other sessions hold: "+
			"retry when the table is less busy, or raise the timeout (WithLockTimeout, -lock-timeout)")
	}
	if len(extra) == 0 {
		return err
	}
	return fmt.Errorf("%w; %s", err, strings.Join(extra, "; "))
}

var downAnnotation = regexp.MustCompile(`(?mi)^--\s*\+goose\s+down\b`)

// lineOf finds the line of the migration file where the failing statement
// (recorded by the tracer, so only after Open) starts, or where the server's
// error position points. 0 when unknown.
func (m *Migrator) lineOf(file, direction string, cause error) int {
	var pgErr *pgconn.PgError
	if m.tracer == nil || !errors.As(cause, &pgErr) {
		return 0
	}
	stmt := m.tracer.failedStatement(pgErr)
	if stmt == "" {
		return 0
	}
	data, err := fs.ReadFile(m.fsys, file)
	if err != nil {
		return 0
	}
	text := string(data)
	start := 0
	if direction == string(DirectionDown) {
		if loc := downAnnotation.FindStringIndex(text); loc != nil {
			start = loc[1]
		}
	}
	i := strings.Index(text[start:], stmt)
	if i < 0 {
		return 0
	}
	line := 1 + strings.Count(text[:start+i], "\n")
	if pos := int(pgErr.Position); pos > 0 {
		// Position counts characters from 1 within the statement.
		if r := []rune(stmt); pos-1 <= len(r) {
			line += strings.Count(string(r[:pos-1]), "\n")
		}
	}
	return line
}
