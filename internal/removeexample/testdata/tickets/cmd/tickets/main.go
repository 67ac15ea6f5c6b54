// Command tickets is the sample service of the README's "Start your own
// service": it opens the pools from the environment (DATABASE_URL), runs the
// typed queries of its schema in a unit of work, nested calls included, then
// prints what a read-only unit of work reads back.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/provider"
	"github.com/cortexerp/datalayer/uow"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickets:", err)
		os.Exit(1)
	}
}

// errNotOpen is the SQLSTATE ticket_close raises for a ticket that is not open.
const errNotOpen = "TK001"

// alice is the assignee of the tickets the service assigns.
var alice = uuid.MustParse("6f1c2a4e-0b7d-4c3e-9a51-2d8e7f30b6c1")

func run(ctx context.Context, out io.Writer) error {
	// readme:begin
	p, err := provider.New(ctx) // DATABASE_URL, DB_<NAME>_* from the environment
	if err != nil {
		return err
	}
	defer func() { _ = p.Close(context.WithoutCancel(ctx)) }()
	u := uow.New(p.Main().Pool(), dbgen.New) // enums and their arrays need no registration code

	var crash dbgen.Ticket
	err = u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
		project, err := q.ProjectCreate(ctx, dbgen.ProjectCreateParams{
			Name: "tracker", Settings: json.RawMessage(`{"sla_hours":24}`), Budget: ptr(decimal.RequireFromString("1500.50")),
		})
		if err != nil {
			return err
		}
		crash, err = q.TicketOpen(ctx, dbgen.TicketOpenParams{
			ProjectID: project.ID, Title: "crash on save", Labels: []dbgen.Label{dbgen.LabelBug},
			Estimate: decimal.RequireFromString("2.50"), Details: json.RawMessage(`{"os":"linux"}`),
			RemindAt: ptr(time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)), DueOn: ptr(time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)),
		})
		if err != nil {
			return err
		}
		// Nested: a savepoint. Closing a ticket twice fails (TK001, raised by
		// ticket_close) and rolls back only this part: the ticket stays open.
		err = u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
			if _, err := q.TicketClose(ctx, crash.ID); err != nil {
				return err
			}
			_, err := q.TicketClose(ctx, crash.ID)
			return err
		})
		switch pgErr := (*pgconn.PgError)(nil); {
		case err == nil:
			return errors.New("a ticket was closed twice")
		case !errors.As(err, &pgErr) || pgErr.Code != errNotOpen:
			return err
		}
		return triage(ctx, u, q, project, crash)
	}, uow.Retry(uow.DefaultRetry))
	// readme:end
	if err != nil {
		return err
	}
	return u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
		return report(ctx, q, out, crash)
	}, uow.ReadOnly())
}

// triage opens two more tickets, assigns two in a batch, logs events with
// COPY, starts one and closes another, each step in a nested unit of work of
// its own, and renames the project.
func triage(ctx context.Context, u *uow.UnitOfWork[*dbgen.Queries], q *dbgen.Queries, project dbgen.Project, crash dbgen.Ticket) error {
	dark, err := q.TicketOpen(ctx, dbgen.TicketOpenParams{
		ProjectID: project.ID, Title: "dark mode", Labels: []dbgen.Label{dbgen.LabelFeature, dbgen.LabelDocs},
		Estimate: decimal.RequireFromString("8"),
	})
	if err != nil {
		return err
	}
	typo, err := q.TicketOpen(ctx, dbgen.TicketOpenParams{
		ProjectID: project.ID, Title: "typo in README", Labels: []dbgen.Label{dbgen.LabelDocs, dbgen.LabelBug},
		Estimate: decimal.RequireFromString("0.25"),
	})
	if err != nil {
		return err
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	err = u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
		var batchErr error
		q.TicketAssign(ctx, []dbgen.TicketAssignParams{
			{ID: crash.ID, Assignee: &alice}, {ID: typo.ID, Assignee: &alice},
		}).Exec(func(_ int, err error) { batchErr = errors.Join(batchErr, err) })
		if batchErr != nil {
			return fmt.Errorf("assign: %w", batchErr)
		}
		n, err := q.TicketEventAdd(ctx, []dbgen.TicketEventAddParams{
			{TicketID: crash.ID, At: at, Note: "reported", Data: json.RawMessage(`{"by":"support"}`)},
			{TicketID: crash.ID, At: at.Add(time.Hour), Note: "assigned to alice"},
			{TicketID: typo.ID, At: at, Note: "reported"},
		})
		if err != nil {
			return err
		}
		if n != 3 {
			return fmt.Errorf("copy events: %d rows, want 3", n)
		}
		return q.TicketSetStatus(ctx, dbgen.TicketSetStatusParams{ID: dark.ID, Status: dbgen.TicketStatusInProgress})
	})
	if err != nil {
		return err
	}
	// A nested call that fails after writing: its event is rolled back with it.
	err = u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
		if _, err := q.TicketEventAdd(ctx, []dbgen.TicketEventAddParams{{TicketID: typo.ID, At: at, Note: "rolled back"}}); err != nil {
			return err
		}
		if _, err := q.TicketClose(ctx, typo.ID); err != nil {
			return err
		}
		return errPostponed
	})
	switch {
	case err == nil:
		return errors.New("postpone: the nested call returned nil")
	case !errors.Is(err, errPostponed):
		return err
	}
	if _, err := q.TicketClose(ctx, typo.ID); err != nil {
		return err
	}
	n, err := q.ProjectRename(ctx, dbgen.ProjectRenameParams{ID: project.ID, Name: "tracker-2"})
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("rename project: %d rows, want 1", n)
	}
	return nil
}

// errPostponed is the error of a nested call that changed its mind.
var errPostponed = errors.New("postponed")

// report prints the tickets, their project, and every field of one ticket
// with its Go type.
func report(ctx context.Context, q *dbgen.Queries, out io.Writer, crash dbgen.Ticket) error {
	rows, err := q.TicketListWithProject(ctx, []dbgen.TicketStatus{dbgen.TicketStatusOpen, dbgen.TicketStatusInProgress})
	if err != nil {
		return err
	}
	for _, r := range rows {
		fmt.Fprintf(out, "%s: %s, labels %v, estimate %s, project %s %s budget %s\n",
			r.Ticket.Title, r.Ticket.Status, r.Ticket.Labels, r.Ticket.Estimate, r.Project.Name, r.Project.Settings, r.Project.Budget)
	}
	bugs, err := q.TicketListLabelled(ctx, dbgen.TicketListLabelledParams{ProjectID: crash.ProjectID, Labels: []dbgen.Label{dbgen.LabelBug}})
	if err != nil {
		return err
	}
	for _, t := range bugs {
		fmt.Fprintf(out, "bug: %s (%s, closed %t, assignee %s)\n", t.Title, t.Status, t.ClosedAt != nil, t.Assignee)
	}
	t, err := q.TicketGet(ctx, crash.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "id %T, status %T, labels %T, estimate %T, details %T %s\n", t.ID, t.Status, t.Labels, t.Estimate, t.Details, t.Details)
	fmt.Fprintf(out, "opened_at %T, closed_at %T %v, remind_at %T %s, due_on %T %s, assignee %T\n",
		t.OpenedAt, t.ClosedAt, t.ClosedAt, t.RemindAt, t.RemindAt.Format(time.DateTime), t.DueOn, t.DueOn.Format(time.DateOnly), t.Assignee)
	events, err := q.TicketEventList(ctx, crash.ID)
	if err != nil {
		return err
	}
	for _, e := range events {
		data := string(e.Data)
		if e.Data == nil {
			data = "NULL"
		}
		fmt.Fprintf(out, "event %s %s, data %s (%T)\n", e.At.UTC().Format(time.DateTime), e.Note, data, e.Data)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
