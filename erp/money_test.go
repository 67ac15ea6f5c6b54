package erp

import (
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

func TestBillRoundsHalfToEven(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                         string
		price, taxRate, percentOff   string
		wantDiscount, wantTax, total string
	}{
		{name: "a tax of half a cent rounds down to even", price: "0.10", taxRate: "0.05", percentOff: "0", wantDiscount: "0.00", wantTax: "0.00", total: "0.10"},
		{name: "a tax of one and a half cents rounds up to even", price: "0.30", taxRate: "0.05", percentOff: "0", wantDiscount: "0.00", wantTax: "0.02", total: "0.32"},
		{name: "discount and tax are rounded once each", price: "10.05", taxRate: "0.2", percentOff: "10", wantDiscount: "1.00", wantTax: "1.81", total: "10.86"},
		{name: "a full discount leaves nothing to pay", price: "3.33", taxRate: "0.2", percentOff: "100", wantDiscount: "3.33", wantTax: "0.00", total: "0.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			price := decimal.RequireFromString(tt.price)
			b := newBill([]OrderLine{{ProductID: 1, Quantity: 1, UnitPrice: price, LineTotal: price}},
				map[int64]decimal.Decimal{1: decimal.RequireFromString(tt.taxRate)})
			if pct := decimal.RequireFromString(tt.percentOff); !pct.IsZero() {
				b = b.withDiscount(pct)
			}
			require.Equal(t, []string{tt.wantDiscount, tt.wantTax, tt.total},
				[]string{b.discount.StringFixed(2), b.tax.StringFixed(2), b.total.StringFixed(2)})
			require.True(t, b.total.Equal(b.subtotal.Sub(b.discount).Add(b.tax)))
		})
	}
}
