-- The outbox's own tables, run by outbox.Migrate with the version table
-- outbox_goose_db_version, so they live beside any application schema.
-- +goose Up
CREATE TABLE outbox_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic           text        NOT NULL CHECK (topic <> ''),
    key             text        NOT NULL DEFAULT '',
    payload         bytea       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- pending → delivered, or pending → dead after the last failed attempt;
    -- Replay moves dead → pending.
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    dead_at         timestamptz
);

-- The relay's claim: pending events in id order, and the head-of-key test
-- (no earlier pending event of the same key).
CREATE INDEX outbox_events_pending_idx ON outbox_events (id) WHERE state = 'pending';
CREATE INDEX outbox_events_pending_key_idx ON outbox_events (key, id) WHERE state = 'pending';
-- Retention and the dead-letter list.
CREATE INDEX outbox_events_delivered_idx ON outbox_events (delivered_at) WHERE state = 'delivered';
CREATE INDEX outbox_events_dead_idx ON outbox_events (id) WHERE state = 'dead';

-- One notification per statement, sent by PostgreSQL at COMMIT (never for a
-- rolled-back write); the payload is constant, so a transaction's many
-- inserts fold into one notification.
-- +goose StatementBegin
CREATE FUNCTION outbox_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_events_notify();

-- The inbox of idempotent consumers: one row per (consumer, event) processed.
CREATE TABLE outbox_inbox (
    consumer     text        NOT NULL CHECK (consumer <> ''),
    event_id     bigint      NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- +goose Down
DROP TABLE outbox_inbox;
DROP TABLE outbox_events;
DROP FUNCTION outbox_events_notify();
