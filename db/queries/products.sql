-- name: ProductCreate :one
INSERT INTO products (sku, name, description, unit_price, tax_rate)
VALUES (@sku, @name, sqlc.narg('description'), @unit_price, @tax_rate)
RETURNING *;

-- name: ProductImport :copyfrom
INSERT INTO products (sku, name, description, unit_price, tax_rate)
VALUES (@sku, @name, @description, @unit_price, @tax_rate);

-- name: ProductListByIDs :many
SELECT * FROM products WHERE id = ANY(@ids::bigint[]) ORDER BY id;

-- name: ProductIDsBySKU :many
SELECT id, sku FROM products WHERE sku = ANY(@skus::text[]) ORDER BY id;

-- name: ProductCount :one
SELECT count(*) FROM products;
