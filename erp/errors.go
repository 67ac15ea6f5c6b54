package erp

import (
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrInvalidInput is wrapped by the error of a malformed request; the
	// message names the field to fix.
	ErrInvalidInput = errors.New("invalid input")
	// ErrAlreadyExists reports a unique value already taken (an e-mail, a SKU,
	// a coupon code).
	ErrAlreadyExists = errors.New("already exists")
	// ErrUnknownCustomer reports a customer ID with no customer.
	ErrUnknownCustomer = errors.New("unknown customer")
	// ErrUnknownProduct reports a product ID with no product (or no stock row).
	ErrUnknownProduct = errors.New("unknown product")
	// ErrOutOfStock reports a stock level that cannot cover a request.
	// PlaceOrder returns it as an *OutOfStockError naming the product.
	ErrOutOfStock = errors.New("out of stock")
	// ErrCouponInvalid reports a coupon that is unknown, expired or has no
	// redemptions left. PlaceOrder never returns it: it places the order
	// without the discount instead.
	ErrCouponInvalid = errors.New("coupon invalid")
	// ErrOrderNotFound reports an order ID with no order.
	ErrOrderNotFound = errors.New("order not found")
	// ErrInvalidTransition reports an order status change the order's current
	// status does not allow; returned as an *InvalidTransitionError.
	ErrInvalidTransition = errors.New("invalid order status transition")
)

// OutOfStockError is the ErrOutOfStock of one product.
type OutOfStockError struct {
	ProductID int64
	Requested int32
	OnHand    int32
}

func (e *OutOfStockError) Error() string {
	return fmt.Sprintf("out of stock: product %d: requested %d, on hand %d", e.ProductID, e.Requested, e.OnHand)
}

// Is makes errors.Is(err, ErrOutOfStock) true.
func (e *OutOfStockError) Is(target error) bool { return target == ErrOutOfStock }

// InvalidTransitionError is the ErrInvalidTransition of one order.
type InvalidTransitionError struct {
	OrderID int64
	From    OrderStatus
	To      OrderStatus
}

func (e *InvalidTransitionError) Error() string {
	return fmt.Sprintf("invalid order status transition: order %d is %s, cannot become %s", e.OrderID, e.From, e.To)
}

// Is makes errors.Is(err, ErrInvalidTransition) true.
func (e *InvalidTransitionError) Is(target error) bool { return target == ErrInvalidTransition }

// invalid returns an ErrInvalidInput saying what to fix.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// constraintErrors says which domain error each constraint violation means.
var constraintErrors = map[string]struct {
	kind   error
	reason string
}{
	"customers_email_key":               {ErrAlreadyExists, "e-mail already registered"},
	"products_sku_key":                  {ErrAlreadyExists, "SKU already exists"},
	"coupons_pkey":                      {ErrAlreadyExists, "coupon code already exists"},
	"orders_customer_id_fkey":           {ErrUnknownCustomer, "no such customer"},
	"order_lines_product_id_fkey":       {ErrUnknownProduct, "no such product"},
	"stock_levels_product_id_fkey":      {ErrUnknownProduct, "no such product"},
	"stock_levels_on_hand_not_negative": {ErrOutOfStock, "stock would go below zero"},
	"coupons_redemptions_within_limit":  {ErrCouponInvalid, "no redemptions left"},
}

// translate turns a database error into the domain error it means: no row
// becomes notFound (when not nil), a known constraint violation its domain
// error (see constraintErrors), still wrapping the *pgconn.PgError. Other
// errors are returned as they are.
func translate(err error, notFound error) error {
	if notFound != nil && errors.Is(err, pgx.ErrNoRows) {
		return notFound
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case pgerrcode.CheckViolation, pgerrcode.UniqueViolation, pgerrcode.ForeignKeyViolation:
		if c, ok := constraintErrors[pgErr.ConstraintName]; ok {
			return &dbError{kind: c.kind, reason: c.reason, cause: pgErr}
		}
	case pgerrcode.NumericValueOutOfRange:
		return &dbError{kind: ErrInvalidInput, reason: "amount out of range", cause: pgErr}
	}
	return err
}

// dbError is a database error translated into a domain error: errors.Is
// matches kind, errors.As finds the *pgconn.PgError.
type dbError struct {
	kind   error
	reason string
	cause  *pgconn.PgError
}

func (e *dbError) Error() string   { return e.kind.Error() + ": " + e.reason }
func (e *dbError) Unwrap() []error { return []error{e.kind, e.cause} }
