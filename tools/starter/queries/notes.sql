-- The starter queries make remove-example leaves in place of the example's:
-- one file per table, queries named entity first.

-- name: NoteCreate :one
INSERT INTO notes (title, body)
VALUES (@title, sqlc.narg('body'))
RETURNING *;

-- name: NoteGet :one
SELECT * FROM notes WHERE id = @id;

-- name: NoteList :many
SELECT * FROM notes
ORDER BY id
LIMIT @max_rows;

-- name: NoteDelete :execrows
DELETE FROM notes WHERE id = @id;
