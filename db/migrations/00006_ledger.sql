-- +goose Up
CREATE TABLE ledger_accounts (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('asset', 'liability', 'equity', 'revenue', 'expense'))
);

CREATE TABLE journals (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id  bigint      REFERENCES orders (id),
    memo      text        NOT NULL,
    posted_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX journals_order_id_idx ON journals (order_id);

-- Amounts are signed: debits positive, credits negative.
CREATE TABLE journal_entries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    journal_id bigint         NOT NULL REFERENCES journals (id),
    account_id bigint         NOT NULL REFERENCES ledger_accounts (id),
    amount     numeric(14, 2) NOT NULL CHECK (amount <> 0)
);

CREATE INDEX journal_entries_journal_id_idx ON journal_entries (journal_id);
CREATE INDEX journal_entries_account_id_idx ON journal_entries (account_id);

-- +goose StatementBegin
CREATE FUNCTION journal_entries_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    jid     bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.journal_id ELSE NEW.journal_id END;
    balance numeric;
BEGIN
    SELECT COALESCE(sum(amount), 0) INTO balance FROM journal_entries WHERE journal_id = jid;
    IF balance <> 0 THEN
        RAISE EXCEPTION 'journal % does not balance: entries sum to %', jid, balance
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_balanced';
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- Checked at COMMIT, so a journal may be written one entry at a time.
CREATE CONSTRAINT TRIGGER journal_entries_balanced
    AFTER INSERT OR UPDATE OR DELETE ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_entries_check_balanced();

-- +goose Down
DROP TRIGGER journal_entries_balanced ON journal_entries;
DROP FUNCTION journal_entries_check_balanced();
DROP TABLE journal_entries;
DROP TABLE journals;
DROP TABLE ledger_accounts;
