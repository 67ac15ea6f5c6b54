-- +goose Up
CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         text           NOT NULL UNIQUE CHECK (sku <> ''),
    name        text           NOT NULL,
    description text,
    unit_price  numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    tax_rate    numeric(5, 4)  NOT NULL DEFAULT 0.2 CHECK (tax_rate >= 0 AND tax_rate < 1),
    created_at  timestamptz    NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE products;
