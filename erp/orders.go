package erp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/uow"
)

// OrderStatus is an order's state: pending, then paid, or cancelled from
// either.
type OrderStatus = dbgen.OrderStatus

// Order statuses.
const (
	OrderPending   = dbgen.OrderStatusPending
	OrderPaid      = dbgen.OrderStatusPaid
	OrderCancelled = dbgen.OrderStatusCancelled
)

// OrderRequest is what PlaceOrder needs.
type OrderRequest struct {
	CustomerID int64
	Items      []Item
	// CouponCode is optional. A coupon that is unknown, expired or has no
	// redemptions left is ignored: the order is placed without discount.
	CouponCode string
	// IdempotencyKey is optional. A request with a key already used returns
	// the order placed with it, whatever this request holds: never a second
	// order.
	IdempotencyKey string
}

// Item is one product and quantity of an OrderRequest.
type Item struct {
	ProductID int64
	Quantity  int32
}

// Order is a placed order. Money is in currency units, rounded to cents.
type Order struct {
	ID             int64
	PublicID       uuid.UUID
	CustomerID     int64
	Status         OrderStatus
	IdempotencyKey string // "" when none
	CouponCode     string // the coupon applied; "" when none
	Subtotal       decimal.Decimal
	Discount       decimal.Decimal
	Tax            decimal.Decimal
	Total          decimal.Decimal // Subtotal - Discount + Tax
	PlacedAt       time.Time
	Lines          []OrderLine
}

// OrderLine is one line of an Order, at the price of the time it was placed.
type OrderLine struct {
	ProductID int64
	Quantity  int32
	UnitPrice decimal.Decimal
	LineTotal decimal.Decimal
}

// errCouponUnknown is the ErrCouponInvalid of a coupon CouponRedeem did not find.
var errCouponUnknown = fmt.Errorf("%w: unknown or expired", ErrCouponInvalid)

// PlaceOrder places an order in one unit of work, retried on serialization
// failures and deadlocks: it prices the items, claims the idempotency key,
// takes the stock (row locks in product order), inserts the lines, applies
// the coupon in a savepoint of its own, posts the sale to the ledger and
// publishes an order.placed event through the outbox.
//
// An item the stock cannot cover gives an *OutOfStockError and writes
// nothing; an unknown customer or product gives ErrUnknownCustomer or
// ErrUnknownProduct.
func (s *Service) PlaceOrder(ctx context.Context, req OrderRequest) (Order, error) {
	if err := req.validate(); err != nil {
		return Order{}, err
	}
	return uow.DoResult(ctx, s.uow, func(ctx context.Context, q *dbgen.Queries) (Order, error) {
		s.countAttempt(ctx)
		lines, taxRates, err := priceItems(ctx, q, req.Items)
		if err != nil {
			return Order{}, err
		}
		b := newBill(lines, taxRates)
		row, err := q.OrderCreate(ctx, dbgen.OrderCreateParams{
			CustomerID:     req.CustomerID,
			IdempotencyKey: optional(req.IdempotencyKey),
			Subtotal:       b.subtotal,
			Tax:            b.tax,
			Total:          b.total,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			// ON CONFLICT DO NOTHING: the key is taken (by a concurrent
			// request too: the insert waited for it to commit).
			return orderByKey(ctx, q, req.IdempotencyKey)
		}
		if err != nil {
			return Order{}, fmt.Errorf("create order: %w", translate(err, nil))
		}
		if err := takeStock(ctx, q, lines); err != nil {
			return Order{}, err
		}
		if err := insertLines(ctx, q, row.ID, lines); err != nil {
			return Order{}, err
		}
		if req.CouponCode != "" {
			// A savepoint: a coupon that fails rolls back only its own writes.
			err := s.uow.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
				discounted, err := redeemCoupon(ctx, q, row.ID, req.CouponCode, b)
				if err == nil {
					b, row.CouponCode = discounted, &req.CouponCode
				}
				return err
			})
			if err != nil && !errors.Is(err, ErrCouponInvalid) {
				return Order{}, err
			}
		}
		row.Discount, row.Tax, row.Total = b.discount, b.tax, b.total
		err = postJournal(ctx, q, row.ID, fmt.Sprintf("order %d placed", row.ID),
			entry{AccountReceivable, b.total},
			entry{AccountRevenue, b.discount.Sub(b.subtotal)},
			entry{AccountSalesTax, b.tax.Neg()},
		)
		if err != nil {
			return Order{}, err
		}
		order := orderFrom(row, lines)
		return order, emit(ctx, TopicOrderPlaced, order)
	}, uow.Retry(uow.DefaultRetry), uow.Name("erp.PlaceOrder"))
}

func (r OrderRequest) validate() error {
	if r.CustomerID <= 0 {
		return invalid("customer ID %d must be positive", r.CustomerID)
	}
	if len(r.Items) == 0 {
		return invalid("an order needs at least one item")
	}
	seen := make(map[int64]bool, len(r.Items))
	for i, it := range r.Items {
		switch {
		case it.Quantity <= 0:
			return invalid("item %d: quantity must be positive, got %d", i, it.Quantity)
		case seen[it.ProductID]:
			return invalid("item %d: product %d is already on the order", i, it.ProductID)
		}
		seen[it.ProductID] = true
	}
	return nil
}

// priceItems prices items at the products' current prices and returns the
// lines with each product's tax rate.
func priceItems(ctx context.Context, q *dbgen.Queries, items []Item) ([]OrderLine, map[int64]decimal.Decimal, error) {
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	products, err := q.ProductListByIDs(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("load products: %w", err)
	}
	byID := make(map[int64]dbgen.Product, len(products))
	for _, p := range products {
		byID[p.ID] = p
	}
	lines := make([]OrderLine, len(items))
	taxRates := make(map[int64]decimal.Decimal, len(items))
	for i, it := range items {
		p, ok := byID[it.ProductID]
		if !ok {
			return nil, nil, fmt.Errorf("%w: product %d", ErrUnknownProduct, it.ProductID)
		}
		lines[i] = OrderLine{
			ProductID: p.ID,
			Quantity:  it.Quantity,
			UnitPrice: p.UnitPrice,
			LineTotal: p.UnitPrice.Mul(decimal.NewFromInt32(it.Quantity)),
		}
		taxRates[p.ID] = p.TaxRate
	}
	return lines, taxRates, nil
}

// takeStock locks the stock rows of the lines' products FOR UPDATE, always
// in product ID order so that concurrent orders cannot deadlock, checks that
// they cover the quantities and takes them.
func takeStock(ctx context.Context, q *dbgen.Queries, lines []OrderLine) error {
	moves := stockMoves(lines, -1)
	ids := make([]int64, len(moves))
	for i, m := range moves {
		ids[i] = m.ProductID
	}
	locked, err := q.StockLockForOrder(ctx, ids)
	if err != nil {
		return fmt.Errorf("lock stock: %w", err)
	}
	onHand := make(map[int64]int32, len(locked))
	for _, r := range locked {
		onHand[r.ProductID] = r.OnHand
	}
	for _, l := range lines {
		if have := onHand[l.ProductID]; have < l.Quantity {
			return &OutOfStockError{ProductID: l.ProductID, Requested: l.Quantity, OnHand: have}
		}
	}
	if err := execBatch(q.StockMove(ctx, moves)); err != nil {
		return fmt.Errorf("take stock: %w", translate(err, nil))
	}
	return nil
}

// stockMoves returns the lines' quantities times sign as stock moves, in
// product ID order (the lock order).
func stockMoves(lines []OrderLine, sign int32) []dbgen.StockMoveParams {
	moves := make([]dbgen.StockMoveParams, len(lines))
	for i, l := range lines {
		moves[i] = dbgen.StockMoveParams{ProductID: l.ProductID, Delta: sign * l.Quantity}
	}
	slices.SortFunc(moves, func(a, b dbgen.StockMoveParams) int { return cmp.Compare(a.ProductID, b.ProductID) })
	return moves
}

// insertLines inserts an order's lines in one batch (one round trip).
func insertLines(ctx context.Context, q *dbgen.Queries, orderID int64, lines []OrderLine) error {
	params := make([]dbgen.OrderLineInsertParams, len(lines))
	for i, l := range lines {
		params[i] = dbgen.OrderLineInsertParams{
			OrderID:   orderID,
			LineNo:    int32(i + 1),
			ProductID: l.ProductID,
			Quantity:  l.Quantity,
			UnitPrice: l.UnitPrice,
			LineTotal: l.LineTotal,
		}
	}
	if err := execBatch(q.OrderLineInsert(ctx, params)); err != nil {
		return fmt.Errorf("insert order lines: %w", translate(err, nil))
	}
	return nil
}

// redeemCoupon counts one use of the coupon and applies its discount to the
// order. An unknown or expired coupon, or one with no redemptions left (the
// coupons table's check constraint), gives ErrCouponInvalid.
func redeemCoupon(ctx context.Context, q *dbgen.Queries, orderID int64, code string, b bill) (bill, error) {
	percentOff, err := q.CouponRedeem(ctx, code)
	if err != nil {
		return bill{}, fmt.Errorf("redeem coupon %q: %w", code, translate(err, errCouponUnknown))
	}
	b = b.withDiscount(percentOff)
	err = q.OrderApplyDiscount(ctx, dbgen.OrderApplyDiscountParams{
		ID:         orderID,
		CouponCode: &code,
		Discount:   b.discount,
		Tax:        b.tax,
		Total:      b.total,
	})
	if err != nil {
		return bill{}, fmt.Errorf("apply discount: %w", err)
	}
	return b, nil
}

// GetOrder returns an order with its lines; ErrOrderNotFound when there is
// none.
func (s *Service) GetOrder(ctx context.Context, orderID int64) (Order, error) {
	return uow.DoResult(ctx, s.uow, func(ctx context.Context, q *dbgen.Queries) (Order, error) {
		row, err := q.OrderGet(ctx, orderID)
		if err != nil {
			return Order{}, fmt.Errorf("get order %d: %w", orderID, translate(err, ErrOrderNotFound))
		}
		return loadOrder(ctx, q, row)
	}, uow.ReadOnly(), uow.Name("erp.GetOrder"))
}

// PayOrder records the payment of a pending order: its status becomes paid
// and the ledger moves its total from receivables to cash. Another status
// gives an *InvalidTransitionError.
func (s *Service) PayOrder(ctx context.Context, orderID int64) (Order, error) {
	return uow.DoResult(ctx, s.uow, func(ctx context.Context, q *dbgen.Queries) (Order, error) {
		s.countAttempt(ctx)
		row, err := q.OrderMarkPaid(ctx, orderID)
		if errors.Is(err, pgx.ErrNoRows) {
			return Order{}, transitionError(ctx, q, orderID, OrderPaid)
		}
		if err != nil {
			return Order{}, fmt.Errorf("mark order %d paid: %w", orderID, err)
		}
		err = postJournal(ctx, q, row.ID, fmt.Sprintf("order %d paid", row.ID),
			entry{AccountCash, row.Total},
			entry{AccountReceivable, row.Total.Neg()},
		)
		if err != nil {
			return Order{}, err
		}
		order, err := loadOrder(ctx, q, row)
		if err != nil {
			return Order{}, err
		}
		return order, emit(ctx, TopicOrderPaid, order)
	}, uow.Retry(uow.DefaultRetry), uow.Name("erp.PayOrder"))
}

// CancelOrder cancels a pending or paid order: its stock goes back and one
// journal reverses all of its postings (for a paid order, the payment too:
// a refund). A cancelled order gives an *InvalidTransitionError.
func (s *Service) CancelOrder(ctx context.Context, orderID int64) (Order, error) {
	return uow.DoResult(ctx, s.uow, func(ctx context.Context, q *dbgen.Queries) (Order, error) {
		s.countAttempt(ctx)
		row, err := q.OrderMarkCancelled(ctx, orderID)
		if errors.Is(err, pgx.ErrNoRows) {
			return Order{}, transitionError(ctx, q, orderID, OrderCancelled)
		}
		if err != nil {
			return Order{}, fmt.Errorf("mark order %d cancelled: %w", orderID, err)
		}
		order, err := loadOrder(ctx, q, row)
		if err != nil {
			return Order{}, err
		}
		// In product ID order, like PlaceOrder, so the two cannot deadlock.
		if err := execBatch(q.StockMove(ctx, stockMoves(order.Lines, 1))); err != nil {
			return Order{}, fmt.Errorf("return stock: %w", err)
		}
		if err := reverseJournals(ctx, q, row.ID, fmt.Sprintf("order %d cancelled", row.ID)); err != nil {
			return Order{}, err
		}
		return order, emit(ctx, TopicOrderCancelled, order)
	}, uow.Retry(uow.DefaultRetry), uow.Name("erp.CancelOrder"))
}

// transitionError explains why order id could not become status to: it does
// not exist, or its status does not allow it.
func transitionError(ctx context.Context, q *dbgen.Queries, id int64, to OrderStatus) error {
	row, err := q.OrderGet(ctx, id)
	if err != nil {
		return fmt.Errorf("get order %d: %w", id, translate(err, ErrOrderNotFound))
	}
	return &InvalidTransitionError{OrderID: id, From: row.Status, To: to}
}

// orderByKey returns the order placed with an idempotency key.
func orderByKey(ctx context.Context, q *dbgen.Queries, key string) (Order, error) {
	row, err := q.OrderGetByIdempotencyKey(ctx, &key)
	if err != nil {
		return Order{}, fmt.Errorf("get order by idempotency key: %w", err)
	}
	return loadOrder(ctx, q, row)
}

// loadOrder reads an order's lines and returns the whole order.
func loadOrder(ctx context.Context, q *dbgen.Queries, row dbgen.Order) (Order, error) {
	rows, err := q.OrderLineList(ctx, row.ID)
	if err != nil {
		return Order{}, fmt.Errorf("list lines of order %d: %w", row.ID, err)
	}
	lines := make([]OrderLine, len(rows))
	for i, l := range rows {
		lines[i] = OrderLine{ProductID: l.ProductID, Quantity: l.Quantity, UnitPrice: l.UnitPrice, LineTotal: l.LineTotal}
	}
	return orderFrom(row, lines), nil
}

func orderFrom(row dbgen.Order, lines []OrderLine) Order {
	return Order{
		ID:             row.ID,
		PublicID:       row.PublicID,
		CustomerID:     row.CustomerID,
		Status:         row.Status,
		IdempotencyKey: deref(row.IdempotencyKey),
		CouponCode:     deref(row.CouponCode),
		Subtotal:       row.Subtotal,
		Discount:       row.Discount,
		Tax:            row.Tax,
		Total:          row.Total,
		PlacedAt:       row.PlacedAt,
		Lines:          lines,
	}
}

// optional maps "" to NULL.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
