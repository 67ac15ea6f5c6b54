package pgtypes_test

// What sqlc generates for the schema of ticketMigrations, written out so
// that this package needs no generated code of its own: an enum type, a
// struct per table, a Queries over a DBTX.

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type Status string

const (
	StatusOpen   Status = "open"
	StatusClosed Status = "closed"
	StatusOnHold Status = "on hold"
)

type DBTX interface {
	Exec(context.Context, string, ...interface{}) (pgconn.CommandTag, error)
	Query(context.Context, string, ...interface{}) (pgx.Rows, error)
	QueryRow(context.Context, string, ...interface{}) pgx.Row
}

func New(db DBTX) *Queries { return &Queries{db: db} }

type Queries struct{ db DBTX }

type Ticket struct {
	ID      int64    `json:"id"`
	Status  Status   `json:"status"`
	History []Status `json:"history"`
}

const ticketCreate = `-- name: TicketCreate :one
INSERT INTO tickets (status, history) VALUES ($1, $2)
RETURNING id, status, history
`

type TicketCreateParams struct {
	Status  Status   `json:"status"`
	History []Status `json:"history"`
}

func (q *Queries) TicketCreate(ctx context.Context, arg TicketCreateParams) (Ticket, error) {
	row := q.db.QueryRow(ctx, ticketCreate, arg.Status, arg.History)
	var i Ticket
	err := row.Scan(&i.ID, &i.Status, &i.History)
	return i, err
}

const ticketListByStatus = `-- name: TicketListByStatus :many
SELECT id, status, history FROM tickets WHERE status = ANY($1::status[]) ORDER BY id
`

func (q *Queries) TicketListByStatus(ctx context.Context, statuses []Status) ([]Ticket, error) {
	rows, err := q.db.Query(ctx, ticketListByStatus, statuses)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []Ticket
	for rows.Next() {
		var i Ticket
		if err := rows.Scan(&i.ID, &i.Status, &i.History); err != nil {
			return nil, err
		}
		items = append(items, i)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return items, nil
}
