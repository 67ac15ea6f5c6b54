-- name: AccountUpdate :exec
-- Locks the account row until the transaction ends.
UPDATE pgbench_accounts SET abalance = abalance + @delta::integer WHERE aid = @aid::integer;

-- name: AccountBalance :one
SELECT abalance FROM pgbench_accounts WHERE aid = @aid::integer;

-- name: TellerUpdate :exec
-- Locks the teller row until the transaction ends.
UPDATE pgbench_tellers SET tbalance = tbalance + @delta::integer WHERE tid = @tid::integer;

-- name: BranchUpdate :exec
-- Locks the branch row until the transaction ends: at scale N there are only
-- N branches, so this is where concurrent transactions queue.
UPDATE pgbench_branches SET bbalance = bbalance + @delta::integer WHERE bid = @bid::integer;

-- name: HistoryInsert :exec
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
VALUES (@tid::integer, @bid::integer, @aid::integer, @delta::integer, CURRENT_TIMESTAMP);

-- About this file: the statements of pgbench's built-in "tpcb-like" script (PostgreSQL 15),
-- word for word apart from the named parameters and their casts (the casts
-- keep the Go types int32 instead of pgtype.Int4: the columns are nullable).
-- One transaction runs them in this order with random aid, tid, bid and delta.
