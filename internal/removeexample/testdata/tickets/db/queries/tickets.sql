-- name: TicketOpen :one
INSERT INTO tickets (project_id, title, labels, estimate, details, remind_at, due_on)
VALUES (@project_id, @title, @labels, @estimate, @details, sqlc.narg('remind_at'), sqlc.narg('due_on'))
RETURNING *;

-- name: TicketGet :one
SELECT * FROM tickets WHERE id = @id;

-- name: TicketListLabelled :many
SELECT * FROM tickets
WHERE project_id = @project_id AND labels && @labels::label[]
ORDER BY title;

-- name: TicketSetStatus :exec
UPDATE tickets SET status = @status WHERE id = @id;

-- name: TicketClose :one
SELECT ticket_close(@id)::timestamptz AS closed_at;

-- name: TicketAssign :batchexec
UPDATE tickets SET assignee = @assignee WHERE id = @id;

-- name: TicketListWithProject :many
SELECT sqlc.embed(tickets), sqlc.embed(projects)
FROM tickets
JOIN projects ON projects.id = tickets.project_id
WHERE tickets.status = ANY(@statuses::ticket_status[])
ORDER BY tickets.title;
