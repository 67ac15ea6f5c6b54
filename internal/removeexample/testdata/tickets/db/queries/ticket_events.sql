-- name: TicketEventAdd :copyfrom
INSERT INTO ticket_events (ticket_id, at, note, data)
VALUES (@ticket_id, @at, @note, @data);

-- name: TicketEventList :many
SELECT * FROM ticket_events WHERE ticket_id = @ticket_id ORDER BY at;
