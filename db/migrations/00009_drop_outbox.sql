-- The example's own outbox table gives way to the kit's outbox package, whose
-- tables its own migrations create (outbox.Migrate, with a version table of
-- their own).
-- +goose Up
-- lint:ignore drop-table nothing reads or writes it any more: its queries and dbgen code are gone, erp publishes through the outbox package
DROP TABLE outbox;

-- +goose Down
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
