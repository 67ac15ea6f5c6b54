-- name: ProjectCreate :one
INSERT INTO projects (name, settings, budget)
VALUES (@name, @settings, sqlc.narg('budget'))
RETURNING *;

-- name: ProjectRename :execrows
UPDATE projects SET name = @name WHERE id = @id;
