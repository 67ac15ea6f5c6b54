-- name: OutboxInsert :exec
INSERT INTO outbox (topic, payload) VALUES (@topic, @payload);

-- OutboxClaim locks a batch of unpublished events, skipping rows another
-- publisher holds (FOR UPDATE SKIP LOCKED), oldest first.
-- name: OutboxClaim :many
SELECT * FROM outbox
WHERE published_at IS NULL
ORDER BY id
LIMIT @max_rows
FOR UPDATE SKIP LOCKED;

-- name: OutboxMarkPublished :execrows
UPDATE outbox SET published_at = now() WHERE id = ANY(@ids::bigint[]) AND published_at IS NULL;

-- name: OutboxPendingCount :one
SELECT count(*) FROM outbox WHERE published_at IS NULL;
