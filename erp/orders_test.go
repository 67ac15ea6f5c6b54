package erp_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/erp"
	"github.com/cortexerp/datalayer/uow"
)

func TestPlaceOrderWritesOrderLinesStockJournalAndEvent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 10, "19.99", "0.20", "5.00", "0.055")
	ctx := t.Context()

	o, err := f.svc.PlaceOrder(ctx, f.order(erp.Item{ProductID: ids[0], Quantity: 2}, erp.Item{ProductID: ids[1], Quantity: 3}))
	require.NoError(t, err)

	// 39.98 + 15.00; tax 7.996 + 0.825 = 8.821 → 8.82.
	require.Equal(t, erp.OrderPending, o.Status)
	require.Equal(t, []string{"54.98", "0.00", "8.82", "63.80"},
		[]string{o.Subtotal.StringFixed(2), o.Discount.StringFixed(2), o.Tax.StringFixed(2), o.Total.StringFixed(2)})
	require.Len(t, o.Lines, 2)
	require.Equal(t, "39.98", o.Lines[0].LineTotal.StringFixed(2))

	stored, err := f.svc.GetOrder(ctx, o.ID)
	require.NoError(t, err)
	require.Equal(t, o.PublicID, stored.PublicID)
	require.True(t, o.Total.Equal(stored.Total))
	require.Len(t, stored.Lines, 2)

	require.Equal(t, int32(8), f.onHand(t, ids[0]))
	require.Equal(t, int32(7), f.onHand(t, ids[1]))
	require.Equal(t, map[string]string{
		erp.AccountCash:       "0.00",
		erp.AccountReceivable: "63.80",
		erp.AccountSalesTax:   "-8.82",
		erp.AccountRevenue:    "-54.98",
	}, f.balances(t))

	events := f.events(t)
	require.Len(t, events, 1)
	require.Equal(t, erp.TopicOrderPlaced, events[0].Topic)
	require.Equal(t, erp.OrderKey(o.ID), events[0].Key)
	var ev erp.OrderEvent
	require.NoError(t, json.Unmarshal(events[0].Payload, &ev))
	require.Equal(t, o.ID, ev.OrderID)
	require.Equal(t, "63.8", ev.Total.String())
}

func TestPlaceOrderOutOfStockWritesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 3, "10.00", "0.20", "20.00", "0.20")
	f.coupon(t, "TEN", 10, 5, time.Time{})

	req := f.order(erp.Item{ProductID: ids[0], Quantity: 1}, erp.Item{ProductID: ids[1], Quantity: 4})
	req.CouponCode, req.IdempotencyKey = "TEN", "k-1"
	_, err := f.svc.PlaceOrder(t.Context(), req)

	var oos *erp.OutOfStockError
	require.ErrorAs(t, err, &oos)
	require.ErrorIs(t, err, erp.ErrOutOfStock)
	require.Equal(t, erp.OutOfStockError{ProductID: ids[1], Requested: 4, OnHand: 3}, *oos)
	require.Equal(t, int32(3), f.onHand(t, ids[0]))
	require.Equal(t, int32(3), f.onHand(t, ids[1]))
	for _, table := range []string{"orders", "order_lines", "journals", "journal_entries", "outbox_events"} {
		require.Zero(t, f.count(t, "SELECT count(*) FROM "+table), table)
	}
	c, err := f.q.CouponGet(t.Context(), "TEN")
	require.NoError(t, err)
	require.Zero(t, c.Redemptions)
}

func TestPlaceOrderWithCoupon(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		percentOff   int64
		max, used    int32
		expiresAt    time.Time
		code         string // as given in the request
		wantDiscount string
		wantTotal    string
	}{
		{name: "a live coupon discounts subtotal and tax", percentOff: 10, max: 5, code: "SAVE", wantDiscount: "5.50", wantTotal: "57.42"},
		{name: "an unknown coupon places the order without discount", percentOff: 10, max: 5, code: "NOPE", wantDiscount: "0.00", wantTotal: "63.80"},
		{name: "an expired coupon places the order without discount", percentOff: 10, max: 5, expiresAt: time.Now().Add(-time.Hour), code: "SAVE", wantDiscount: "0.00", wantTotal: "63.80"},
		{name: "an exhausted coupon places the order without discount", percentOff: 10, max: 2, used: 2, code: "SAVE", wantDiscount: "0.00", wantTotal: "63.80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ids := f.products(t, 10, "19.99", "0.20", "5.00", "0.055")
			f.coupon(t, "SAVE", tt.percentOff, tt.max, tt.expiresAt)
			_, err := f.pool.Exec(t.Context(), "UPDATE coupons SET redemptions = $1", tt.used)
			require.NoError(t, err)
			before, err := f.q.CouponGet(t.Context(), "SAVE")
			require.NoError(t, err)

			req := f.order(erp.Item{ProductID: ids[0], Quantity: 2}, erp.Item{ProductID: ids[1], Quantity: 3})
			req.CouponCode = tt.code
			o, err := f.svc.PlaceOrder(t.Context(), req)
			require.NoError(t, err)

			require.Equal(t, tt.wantDiscount, o.Discount.StringFixed(2))
			require.Equal(t, tt.wantTotal, o.Total.StringFixed(2))
			stored, err := f.svc.GetOrder(t.Context(), o.ID)
			require.NoError(t, err)
			require.Equal(t, o.CouponCode, stored.CouponCode)
			require.Equal(t, tt.wantTotal, stored.Total.StringFixed(2))
			after, err := f.q.CouponGet(t.Context(), "SAVE")
			require.NoError(t, err)
			if tt.wantDiscount == "0.00" {
				require.Empty(t, o.CouponCode)
				require.Equal(t, before, after, "the coupon row is unchanged")
			} else {
				require.Equal(t, "SAVE", o.CouponCode)
				require.Equal(t, before.Redemptions+1, after.Redemptions)
			}
			require.Equal(t, tt.wantTotal, f.balances(t)[erp.AccountReceivable])
			require.Equal(t, int32(8), f.onHand(t, ids[0]))
		})
	}
}

func TestPlaceOrderRejectsBadRequests(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 10, "1.00", "0")
	tests := []struct {
		name    string
		req     erp.OrderRequest
		wantErr error
		wantMsg string
	}{
		{"no items", f.order(), erp.ErrInvalidInput, "at least one item"},
		{"zero quantity", f.order(erp.Item{ProductID: ids[0]}), erp.ErrInvalidInput, "quantity must be positive"},
		{"negative quantity", f.order(erp.Item{ProductID: ids[0], Quantity: -1}), erp.ErrInvalidInput, "quantity must be positive"},
		{"a product twice", f.order(erp.Item{ProductID: ids[0], Quantity: 1}, erp.Item{ProductID: ids[0], Quantity: 1}), erp.ErrInvalidInput, "already on the order"},
		{"no customer", erp.OrderRequest{Items: []erp.Item{{ProductID: ids[0], Quantity: 1}}}, erp.ErrInvalidInput, "customer ID 0"},
		{"unknown customer", erp.OrderRequest{CustomerID: 999, Items: []erp.Item{{ProductID: ids[0], Quantity: 1}}}, erp.ErrUnknownCustomer, "unknown customer"},
		{"unknown product", f.order(erp.Item{ProductID: 999, Quantity: 1}), erp.ErrUnknownProduct, "product 999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.PlaceOrder(t.Context(), tt.req)
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
	require.Zero(t, f.count(t, "SELECT count(*) FROM orders"))
	require.Equal(t, int32(10), f.onHand(t, ids[0]))
}

func TestPlaceOrderIdempotencyKeyReturnsTheOriginalOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 10, "2.50", "0.20")
	req := f.order(erp.Item{ProductID: ids[0], Quantity: 2})
	req.IdempotencyKey = "checkout-42"

	first, err := f.svc.PlaceOrder(t.Context(), req)
	require.NoError(t, err)
	req.Items[0].Quantity = 5 // a replay's content does not matter
	again, err := f.svc.PlaceOrder(t.Context(), req)
	require.NoError(t, err)

	require.Equal(t, first.ID, again.ID)
	require.Equal(t, int32(2), again.Lines[0].Quantity)
	require.Equal(t, "checkout-42", again.IdempotencyKey)
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM orders"))
	require.Equal(t, int32(8), f.onHand(t, ids[0]))
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM outbox_events"))
}

func TestPlaceOrderConcurrentRetriesWithOneKeyPlaceOneOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 100, "3.00", "0.20")
	req := f.order(erp.Item{ProductID: ids[0], Quantity: 1})
	req.IdempotencyKey = "retry-storm"

	const n = 8
	got := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o, err := f.svc.PlaceOrder(t.Context(), req)
			got[i], errs[i] = o.ID, err
		})
	}
	wg.Wait()

	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, got[0], got[i])
	}
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM orders"))
	require.Equal(t, int32(99), f.onHand(t, ids[0]))
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM journals"))
}

func TestOrderTransitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		steps   []string // pay or cancel, applied in order; all but the last succeed
		wantErr error    // of the last step; nil: it succeeds too
	}{
		{name: "a pending order can be paid", steps: []string{"pay"}},
		{name: "a pending order can be cancelled", steps: []string{"cancel"}},
		{name: "a paid order can be cancelled (refunded)", steps: []string{"pay", "cancel"}},
		{name: "a paid order cannot be paid again", steps: []string{"pay", "pay"}, wantErr: erp.ErrInvalidTransition},
		{name: "a cancelled order cannot be paid", steps: []string{"cancel", "pay"}, wantErr: erp.ErrInvalidTransition},
		{name: "a cancelled order cannot be cancelled again", steps: []string{"cancel", "cancel"}, wantErr: erp.ErrInvalidTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ids := f.products(t, 10, "10.00", "0.20")
			o, err := f.svc.PlaceOrder(t.Context(), f.order(erp.Item{ProductID: ids[0], Quantity: 3}))
			require.NoError(t, err)
			for i, step := range tt.steps {
				before := f.balances(t)
				switch step {
				case "pay":
					_, err = f.svc.PayOrder(t.Context(), o.ID)
				case "cancel":
					_, err = f.svc.CancelOrder(t.Context(), o.ID)
				}
				if i == len(tt.steps)-1 && tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
					var te *erp.InvalidTransitionError
					require.ErrorAs(t, err, &te)
					require.Equal(t, o.ID, te.OrderID)
					require.Equal(t, before, f.balances(t), "a refused transition posts nothing")
					return
				}
				require.NoError(t, err)
			}
			stored, err := f.svc.GetOrder(t.Context(), o.ID)
			require.NoError(t, err)
			switch tt.steps[len(tt.steps)-1] {
			case "pay":
				require.Equal(t, erp.OrderPaid, stored.Status)
				require.Equal(t, int32(7), f.onHand(t, ids[0]))
				require.Equal(t, "36.00", f.balances(t)[erp.AccountCash])
				require.Equal(t, "0.00", f.balances(t)[erp.AccountReceivable])
			case "cancel":
				require.Equal(t, erp.OrderCancelled, stored.Status)
				require.Equal(t, int32(10), f.onHand(t, ids[0]), "stock is back")
				for code, balance := range f.balances(t) {
					require.Equal(t, "0.00", balance, "account %s is reversed", code)
				}
			}
			require.Equal(t, len(tt.steps)+1, f.count(t, "SELECT count(*) FROM outbox_events"))
		})
	}
}

func TestTransitionsOfAMissingOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.svc.PayOrder(t.Context(), 404)
	require.ErrorIs(t, err, erp.ErrOrderNotFound)
	_, err = f.svc.CancelOrder(t.Context(), 404)
	require.ErrorIs(t, err, erp.ErrOrderNotFound)
	_, err = f.svc.GetOrder(t.Context(), 404)
	require.ErrorIs(t, err, erp.ErrOrderNotFound)
}

func TestConcurrentOrdersNeverOversell(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 20, "1.00", "0.20", "2.00", "0.20", "3.00", "0.20")

	// 30 orders of 2 units over the same products, in both lock orders.
	orders := make([]erp.Order, 30)
	errs := make([]error, 30)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			a, b := ids[i%3], ids[(i+1)%3]
			orders[i], errs[i] = f.svc.PlaceOrder(t.Context(), f.order(erp.Item{ProductID: b, Quantity: 2}, erp.Item{ProductID: a, Quantity: 2}))
		})
	}
	wg.Wait()

	sold := map[int64]int32{}
	for i, o := range orders {
		if errs[i] != nil {
			require.ErrorIs(t, errs[i], erp.ErrOutOfStock)
			continue
		}
		for _, l := range o.Lines {
			sold[l.ProductID] += l.Quantity
		}
	}
	for _, id := range ids {
		require.Equal(t, int32(20), f.onHand(t, id)+sold[id], "stock + sold = initial for product %d", id)
	}
	require.Zero(t, f.svc.Retries(), "ordered row locks leave nothing to retry")
}

func TestServiceMethodsJoinTheCallersUnitOfWork(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ids := f.products(t, 5, "4.00", "0.20")
	errLater := errors.New("a later step failed")

	u := uow.New(f.pool, dbgen.New)
	err := u.Do(t.Context(), func(ctx context.Context, q *dbgen.Queries) error {
		c, err := f.svc.CreateCustomer(ctx, erp.NewCustomer{Name: "Linus", Email: "linus@example.com"})
		if err != nil {
			return err
		}
		if _, err := f.svc.PlaceOrder(ctx, erp.OrderRequest{CustomerID: c.ID, Items: []erp.Item{{ProductID: ids[0], Quantity: 2}}}); err != nil {
			return err
		}
		return errLater
	})
	require.ErrorIs(t, err, errLater)
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM customers"), "only the fixture's customer")
	require.Zero(t, f.count(t, "SELECT count(*) FROM orders"))
	require.Equal(t, int32(5), f.onHand(t, ids[0]))
}
