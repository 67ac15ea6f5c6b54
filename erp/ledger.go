package erp

import (
	"context"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/cortexerp/datalayer/dbgen"
)

// Ledger account codes (seeded by the migrations). Amounts are signed:
// debits positive, credits negative; every journal sums to zero.
const (
	AccountCash       = "1000"
	AccountReceivable = "1100"
	AccountSalesTax   = "2200"
	AccountRevenue    = "4000"
)

// AccountBalance is one line of the trial balance.
type AccountBalance struct {
	Code    string
	Name    string
	Balance decimal.Decimal // debit positive, credit negative
}

// TrialBalance lists every ledger account's balance; Total, their sum, is
// zero in a consistent ledger.
type TrialBalance struct {
	Accounts []AccountBalance
	Total    decimal.Decimal
}

// TrialBalance sums the ledger per account, by account code.
func (s *Service) TrialBalance(ctx context.Context) (TrialBalance, error) {
	rows, err := s.uow.Queries(ctx).LedgerTrialBalance(ctx)
	if err != nil {
		return TrialBalance{}, fmt.Errorf("read trial balance: %w", err)
	}
	tb := TrialBalance{Accounts: make([]AccountBalance, len(rows))}
	for i, r := range rows {
		tb.Accounts[i] = AccountBalance{Code: r.Code, Name: r.Name, Balance: r.Balance}
		tb.Total = tb.Total.Add(r.Balance)
	}
	return tb, nil
}

// entry is one posting of a journal: a signed amount on an account.
type entry struct {
	account string
	amount  decimal.Decimal
}

// postJournal writes a journal of an order with its entries, leaving out
// zero amounts. The database checks at COMMIT that it balances.
func postJournal(ctx context.Context, q *dbgen.Queries, orderID int64, memo string, entries ...entry) error {
	journalID, err := q.JournalCreate(ctx, dbgen.JournalCreateParams{OrderID: &orderID, Memo: memo})
	if err != nil {
		return fmt.Errorf("create journal: %w", err)
	}
	params := make([]dbgen.JournalEntryAddParams, 0, len(entries))
	for _, e := range entries {
		if !e.amount.IsZero() {
			params = append(params, dbgen.JournalEntryAddParams{JournalID: journalID, AccountCode: e.account, Amount: e.amount})
		}
	}
	if len(params) == 0 {
		return nil
	}
	if err := execBatch(q.JournalEntryAdd(ctx, params)); err != nil {
		return fmt.Errorf("post journal entries: %w", err)
	}
	return nil
}

// reverseJournals posts one journal that undoes every journal of an order.
func reverseJournals(ctx context.Context, q *dbgen.Queries, orderID int64, memo string) error {
	journals, err := q.JournalListForOrder(ctx, &orderID)
	if err != nil {
		return fmt.Errorf("list journals: %w", err)
	}
	reversalID, err := q.JournalCreate(ctx, dbgen.JournalCreateParams{OrderID: &orderID, Memo: memo})
	if err != nil {
		return fmt.Errorf("create journal: %w", err)
	}
	for _, j := range journals {
		if _, err := q.JournalReverse(ctx, dbgen.JournalReverseParams{ReversalID: reversalID, JournalID: j.ID}); err != nil {
			return fmt.Errorf("reverse journal %d: %w", j.ID, err)
		}
	}
	return nil
}
