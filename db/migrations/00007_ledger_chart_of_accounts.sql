-- +goose Up
INSERT INTO ledger_accounts (code, name, kind) VALUES
    ('1000', 'Cash', 'asset'),
    ('1100', 'Accounts receivable', 'asset'),
    ('2200', 'Sales tax payable', 'liability'),
    ('4000', 'Sales revenue', 'revenue');

-- +goose Down
DELETE FROM ledger_accounts WHERE code IN ('1000', '1100', '2200', '4000');
