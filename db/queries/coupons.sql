-- name: CouponCreate :exec
INSERT INTO coupons (code, percent_off, max_redemptions, expires_at)
VALUES (@code, @percent_off, @max_redemptions, sqlc.narg('expires_at'));

-- CouponRedeem counts one use of a live coupon and returns its discount; the
-- row stays locked until the transaction ends. No row: unknown or expired.
-- name: CouponRedeem :one
UPDATE coupons SET redemptions = redemptions + 1
WHERE code = @code AND (expires_at IS NULL OR expires_at > now())
RETURNING percent_off;

-- name: CouponGet :one
SELECT * FROM coupons WHERE code = @code;
