-- +goose Up
-- A small ticket tracker: the schema the README's "Start your own service"
-- writes in place of the starter (internal/removeexample runs that path).
CREATE TYPE ticket_status AS ENUM ('open', 'in_progress', 'closed');
CREATE TYPE label AS ENUM ('bug', 'feature', 'docs');

CREATE TABLE projects (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text           NOT NULL UNIQUE,
    settings   jsonb          NOT NULL DEFAULT '{}',
    budget     numeric(12, 2),
    created_at timestamptz    NOT NULL DEFAULT now()
);

CREATE TABLE tickets (
    id         uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id bigint        NOT NULL REFERENCES projects (id),
    title      text          NOT NULL CHECK (title <> ''),
    status     ticket_status NOT NULL DEFAULT 'open',
    labels     label[]       NOT NULL DEFAULT '{}',
    estimate   numeric(6, 2) NOT NULL DEFAULT 0,
    details    jsonb,
    opened_at  timestamp with time zone NOT NULL DEFAULT now(),
    closed_at  pg_catalog.timestamptz,
    -- a wall-clock time and a calendar day, as the team's office sees them
    remind_at  timestamp,
    due_on     date,
    assignee   uuid
);

CREATE TABLE ticket_events (
    ticket_id uuid        NOT NULL REFERENCES tickets (id),
    at        timestamptz NOT NULL,
    note      text        NOT NULL,
    data      jsonb
);

-- ticket_close closes an open ticket and returns when; closing a closed
-- ticket raises TK001.
-- +goose StatementBegin
CREATE FUNCTION ticket_close(p_id uuid) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    closed timestamptz;
BEGIN
    UPDATE tickets SET status = 'closed', closed_at = now()
    WHERE id = p_id AND status <> 'closed'
    RETURNING closed_at INTO closed;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ticket % is not open', p_id USING ERRCODE = 'TK001';
    END IF;
    RETURN closed;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ticket_close(uuid);
DROP TABLE ticket_events;
DROP TABLE tickets;
DROP TABLE projects;
DROP TYPE label;
DROP TYPE ticket_status;
