-- name: SpellingGet :one
SELECT * FROM spellings WHERE id = @id;

-- name: SpellingFind :many
SELECT id FROM spellings
WHERE tz1 > @a::timestamptz
  AND tz2 > CAST(sqlc.arg(b) AS timestamp with time zone)
  AND ts1 > @c::timestamp
  AND d1 > @d::date
  AND jb1 @> @e::jsonb
  AND n1 > @f::numeric
  AND u1 = @g::uuid
  AND tz1 > sqlc.narg(h)::timestamptz
  AND sta && @i::status[];
