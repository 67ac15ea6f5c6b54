-- +goose Up
CREATE TABLE stock_levels (
    product_id bigint      PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
    on_hand    integer     NOT NULL CONSTRAINT stock_levels_on_hand_not_negative CHECK (on_hand >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE stock_levels;
