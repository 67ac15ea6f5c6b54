// Package erp is the example application of the kit: customers, products and
// stock, orders and a double-entry ledger, whose changes it announces through
// the kit's outbox, written the way a team writes its own services on uow,
// dbgen and outbox.
//
// Every Service method is one unit of work; given a ctx that already carries
// one on the same pool (a caller's u.Do), it joins it, as a savepoint.
// PlaceOrder shows the whole kit:
//
//   - one transaction, replayed on serialization failures and deadlocks
//     (uow.Retry(uow.DefaultRetry));
//   - an idempotency key claimed with INSERT … ON CONFLICT DO NOTHING: a key
//     already used returns the original order, also under concurrent retries;
//   - stock rows locked FOR UPDATE in product ID order, so concurrent orders
//     cannot deadlock, then decremented in one batch;
//   - order lines inserted in one batch;
//   - an optional coupon in a nested unit of work (a savepoint): an unknown,
//     expired or exhausted coupon rolls back only its own writes, and the
//     order is placed without discount;
//   - a balanced journal: receivable debit = total, revenue credit =
//     subtotal − discount, tax credit = tax;
//   - an outbox event (outbox.Publish) in the same transaction, keyed by
//     the order, so a relay delivers each order's events in commit order.
//
// Units of work run at READ COMMITTED: row locks (stock rows FOR UPDATE,
// order rows by UPDATE … WHERE status), unique keys and check constraints
// keep the data right, so concurrent work waits instead of failing, and
// retries are a safety net rather than the rule.
//
// Money is shopspring decimal. Line totals and subtotals are exact; discount
// and tax are rounded to cents once per order, half to even (banker's
// rounding).
//
// Errors a caller can act on are typed: ErrInvalidInput (the message names
// the field), ErrOutOfStock (*OutOfStockError names the product),
// ErrCouponInvalid, ErrOrderNotFound, ErrInvalidTransition
// (*InvalidTransitionError), ErrUnknownCustomer, ErrUnknownProduct and
// ErrAlreadyExists. Database errors are translated to them in one place
// (errors.go), from SQLSTATEs and constraint names.
package erp
