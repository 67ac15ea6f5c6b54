-- OrderCreate inserts a pending order. With an idempotency key already used it
-- inserts nothing and returns no row (it waits for a concurrent insert of the
-- same key to commit or roll back first).
-- name: OrderCreate :one
INSERT INTO orders (customer_id, idempotency_key, subtotal, tax, total)
VALUES (@customer_id, sqlc.narg('idempotency_key'), @subtotal, @tax, @total)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING *;

-- name: OrderGet :one
SELECT * FROM orders WHERE id = @id;

-- name: OrderGetByIdempotencyKey :one
SELECT * FROM orders WHERE idempotency_key = @idempotency_key;

-- OrderGetForUpdate locks the order row until the transaction ends.
-- name: OrderGetForUpdate :one
SELECT * FROM orders WHERE id = @id FOR UPDATE;

-- name: OrderApplyDiscount :exec
UPDATE orders
SET coupon_code = @coupon_code, discount = @discount, tax = @tax, total = @total
WHERE id = @id;

-- OrderMarkPaid moves a pending order to paid, locking its row; no row when
-- the order does not exist or is not pending.
-- name: OrderMarkPaid :one
UPDATE orders SET status = 'paid', paid_at = now()
WHERE id = @id AND status = 'pending'
RETURNING *;

-- OrderMarkCancelled moves a pending or paid order to cancelled, locking its
-- row; no row when the order does not exist or is already cancelled.
-- name: OrderMarkCancelled :one
UPDATE orders SET status = 'cancelled', cancelled_at = now()
WHERE id = @id AND status IN ('pending', 'paid')
RETURNING *;

-- name: OrderList :many
SELECT * FROM orders
WHERE sqlc.narg('status')::order_status IS NULL OR status = sqlc.narg('status')::order_status
ORDER BY id
LIMIT @max_rows;

-- name: OrderCountByStatus :many
SELECT status, count(*) AS orders, COALESCE(sum(total), 0)::numeric AS total
FROM orders
GROUP BY status
ORDER BY status;
