package erp

import "github.com/shopspring/decimal"

// cents rounds an amount to cents, half to even (banker's rounding), so that
// rounding errors do not drift one way over many orders.
func cents(d decimal.Decimal) decimal.Decimal { return d.RoundBank(2) }

// bill holds an order's amounts. Line totals and the subtotal are exact;
// discount and tax are rounded to cents once, on the whole order.
type bill struct {
	subtotal decimal.Decimal
	discount decimal.Decimal
	tax      decimal.Decimal
	total    decimal.Decimal
	exactTax decimal.Decimal // Σ line total × tax rate, before any discount, unrounded
}

func newBill(lines []OrderLine, taxRates map[int64]decimal.Decimal) bill {
	var b bill
	for _, l := range lines {
		b.subtotal = b.subtotal.Add(l.LineTotal)
		b.exactTax = b.exactTax.Add(l.LineTotal.Mul(taxRates[l.ProductID]))
	}
	b.tax = cents(b.exactTax)
	b.total = b.subtotal.Add(b.tax)
	return b
}

// withDiscount takes percentOff (10 for 10 %) off the subtotal and the tax.
func (b bill) withDiscount(percentOff decimal.Decimal) bill {
	rate := percentOff.Shift(-2)
	b.discount = cents(b.subtotal.Mul(rate))
	b.tax = cents(b.exactTax.Mul(decimal.NewFromInt(1).Sub(rate)))
	b.total = b.subtotal.Sub(b.discount).Add(b.tax)
	return b
}
