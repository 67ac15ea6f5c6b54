-- +goose Up
CREATE TABLE coupons (
    code            text          PRIMARY KEY,
    percent_off     numeric(5, 2) NOT NULL CHECK (percent_off > 0 AND percent_off <= 100),
    max_redemptions integer       NOT NULL CHECK (max_redemptions > 0),
    redemptions     integer       NOT NULL DEFAULT 0
        CONSTRAINT coupons_redemptions_within_limit CHECK (redemptions <= max_redemptions),
    expires_at      timestamptz
);

-- +goose Down
DROP TABLE coupons;
