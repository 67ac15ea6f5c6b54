-- name: CustomerCreate :one
INSERT INTO customers (name, email, credit_limit)
VALUES (@name, @email, sqlc.narg('credit_limit'))
RETURNING *;

-- name: CustomerGet :one
SELECT * FROM customers WHERE id = @id;

-- name: CustomerList :many
SELECT * FROM customers
WHERE sqlc.narg('email_domain')::text IS NULL OR email LIKE '%@' || sqlc.narg('email_domain')::text
ORDER BY id
LIMIT @max_rows;
