-- +goose Up
-- The starter table make remove-example leaves in place of the example:
-- replace it with your own (make migrate-create NAME=invoices).
CREATE TABLE notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title      text        NOT NULL CHECK (title <> ''),
    body       text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE notes;
