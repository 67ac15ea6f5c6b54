-- name: StockImport :copyfrom
INSERT INTO stock_levels (product_id, on_hand) VALUES (@product_id, @on_hand);

-- name: StockGet :one
SELECT * FROM stock_levels WHERE product_id = @product_id;

-- StockLockForOrder takes row locks (FOR UPDATE) on the stock of the given
-- products, always in product_id order, so concurrent orders cannot deadlock.
-- name: StockLockForOrder :many
SELECT product_id, on_hand FROM stock_levels
WHERE product_id = ANY(@product_ids::bigint[])
ORDER BY product_id
FOR UPDATE;

-- StockAdjust changes one product's stock by delta; the table's check
-- constraint refuses a result below zero.
-- name: StockAdjust :one
UPDATE stock_levels SET on_hand = on_hand + @delta, updated_at = now()
WHERE product_id = @product_id
RETURNING on_hand;

-- StockMove applies one delta of a batch (order placement or cancellation).
-- name: StockMove :batchexec
UPDATE stock_levels SET on_hand = on_hand + @delta, updated_at = now()
WHERE product_id = @product_id;

-- name: StockList :many
SELECT sqlc.embed(products), stock_levels.on_hand
FROM products
JOIN stock_levels ON stock_levels.product_id = products.id
ORDER BY products.id;

-- name: StockTotal :one
SELECT COALESCE(sum(on_hand), 0)::bigint AS on_hand FROM stock_levels;
