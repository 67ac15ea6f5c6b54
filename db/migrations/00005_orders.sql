-- +goose Up
CREATE TYPE order_status AS ENUM ('pending', 'paid', 'cancelled');

CREATE TABLE orders (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id       uuid           NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    customer_id     bigint         NOT NULL REFERENCES customers (id),
    status          order_status   NOT NULL DEFAULT 'pending',
    idempotency_key text           UNIQUE,
    coupon_code     text           REFERENCES coupons (code),
    subtotal        numeric(14, 2) NOT NULL CHECK (subtotal >= 0),
    discount        numeric(14, 2) NOT NULL DEFAULT 0 CHECK (discount >= 0),
    tax             numeric(14, 2) NOT NULL CHECK (tax >= 0),
    total           numeric(14, 2) NOT NULL CHECK (total >= 0),
    placed_at       timestamptz    NOT NULL DEFAULT now(),
    paid_at         timestamptz,
    cancelled_at    timestamptz
);

CREATE INDEX orders_customer_id_idx ON orders (customer_id);

CREATE TABLE order_lines (
    order_id   bigint         NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no    integer        NOT NULL CHECK (line_no > 0),
    product_id bigint         NOT NULL REFERENCES products (id),
    quantity   integer        NOT NULL CHECK (quantity > 0),
    unit_price numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    line_total numeric(14, 2) NOT NULL CHECK (line_total >= 0),
    PRIMARY KEY (order_id, line_no)
);

CREATE INDEX order_lines_product_id_idx ON order_lines (product_id);

-- +goose Down
DROP TABLE order_lines;
DROP TABLE orders;
DROP TYPE order_status;
