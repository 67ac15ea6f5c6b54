package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cortexerp/datalayer/erp"
)

// Catalog is what Seed created; names carry the run's tag so that runs can
// share a database.
type Catalog struct {
	Customers []int64
	Products  []int64
	Initial   map[int64]int32 // opening stock by product ID
	// Coupons by kind: live (plenty of uses), scarce (runs out during the
	// workload), expired, unknown (never created).
	Live, Scarce, Expired, Unknown string
}

// Seed creates customers, products with their stock (one COPY each) and
// coupons, drawing prices and stock from rng.
func Seed(ctx context.Context, svc *erp.Service, rng *rand.Rand, tag string, customers, products int) (Catalog, error) {
	c := Catalog{
		Initial: make(map[int64]int32, products),
		Live:    tag + "-SAVE10",
		Scarce:  tag + "-LAUNCH25",
		Expired: tag + "-SUMMER",
		Unknown: tag + "-BOGUS",
	}
	for i := range customers {
		cu, err := svc.CreateCustomer(ctx, erp.NewCustomer{
			Name:  fmt.Sprintf("Customer %d", i+1),
			Email: fmt.Sprintf("customer%d@%s.example.com", i+1, tag),
		})
		if err != nil {
			return c, err
		}
		c.Customers = append(c.Customers, cu.ID)
	}

	taxRates := []decimal.Decimal{decimal.RequireFromString("0.20"), decimal.RequireFromString("0.10"), decimal.RequireFromString("0.055"), decimal.Zero}
	ps := make([]erp.NewProduct, products)
	for i := range ps {
		ps[i] = erp.NewProduct{
			SKU:       fmt.Sprintf("%s-%03d", tag, i+1),
			Name:      fmt.Sprintf("Product %d", i+1),
			UnitPrice: decimal.New(rng.Int64N(9900)+100, -2), // 1.00 to 99.99
			TaxRate:   taxRates[rng.IntN(len(taxRates))],
			OnHand:    rng.Int32N(70) + 30,
		}
	}
	ids, err := svc.ImportProducts(ctx, ps)
	if err != nil {
		return c, err
	}
	c.Products = ids
	for i, id := range ids {
		c.Initial[id] = ps[i].OnHand
	}

	coupons := []erp.NewCoupon{
		{Code: c.Live, PercentOff: decimal.NewFromInt(10), MaxRedemptions: 1_000_000},
		{Code: c.Scarce, PercentOff: decimal.NewFromInt(25), MaxRedemptions: 10},
		{Code: c.Expired, PercentOff: decimal.NewFromInt(30), MaxRedemptions: 100, ExpiresAt: time.Now().Add(-24 * time.Hour)},
	}
	for _, cp := range coupons {
		if err := svc.CreateCoupon(ctx, cp); err != nil {
			return c, err
		}
	}
	return c, nil
}
