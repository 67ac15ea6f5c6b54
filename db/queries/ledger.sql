-- name: LedgerAccountList :many
SELECT * FROM ledger_accounts ORDER BY code;

-- name: JournalCreate :one
INSERT INTO journals (order_id, memo) VALUES (sqlc.narg('order_id'), @memo)
RETURNING id;

-- name: JournalEntryAdd :batchexec
INSERT INTO journal_entries (journal_id, account_id, amount)
SELECT @journal_id::bigint, ledger_accounts.id, @amount::numeric
FROM ledger_accounts WHERE ledger_accounts.code = @account_code::text;

-- JournalReverse copies a journal's entries into another with opposite signs.
-- name: JournalReverse :execrows
INSERT INTO journal_entries (journal_id, account_id, amount)
SELECT @reversal_id::bigint, original.account_id, -original.amount
FROM journal_entries AS original
WHERE original.journal_id = @journal_id::bigint;

-- name: JournalListForOrder :many
SELECT * FROM journals WHERE order_id = @order_id ORDER BY id;

-- name: LedgerTrialBalance :many
SELECT ledger_accounts.code, ledger_accounts.name,
       COALESCE(sum(journal_entries.amount), 0)::numeric AS balance
FROM ledger_accounts
LEFT JOIN journal_entries ON journal_entries.account_id = ledger_accounts.id
GROUP BY ledger_accounts.id
ORDER BY ledger_accounts.code;

-- name: LedgerUnbalancedJournals :many
SELECT journal_id, sum(amount)::numeric AS balance
FROM journal_entries
GROUP BY journal_id
HAVING sum(amount) <> 0;
