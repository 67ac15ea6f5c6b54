-- +goose Up
CREATE TABLE customers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id    uuid        NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    name         text        NOT NULL CHECK (name <> ''),
    email        text        NOT NULL UNIQUE CHECK (email LIKE '%_@_%'),
    credit_limit numeric(14, 2) CHECK (credit_limit >= 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE customers;
