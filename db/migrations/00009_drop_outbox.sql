-- The example's own outbox table gives way to the kit's outbox package, whose
-- tables its own migrations create (outbox.Migrate, with a version table of
-- their own).
-- +goose Up
-- lint:ignore drop-table the example's own table: erp publishes through outbox.Publish since this release, and the example runs no old code beside the new
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
