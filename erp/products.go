package erp

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/uow"
)

// NewProduct is one product for ImportProducts, with its opening stock.
type NewProduct struct {
	SKU         string
	Name        string
	Description string          // optional
	UnitPrice   decimal.Decimal // in currency units, at most 2 decimals
	TaxRate     decimal.Decimal // 0.2 for 20 %, in [0, 1), at most 4 decimals
	OnHand      int32           // opening stock, not negative
}

// StockLevel is one product's stock: what is on hand and what was sold
// (ordered and not cancelled).
type StockLevel struct {
	ProductID int64
	SKU       string
	Name      string
	OnHand    int32
	Sold      int64
}

// ImportProducts creates products and their stock in one unit of work, with
// two COPYs, and returns their IDs in the order given. Either all are
// created or none; a SKU already taken gives ErrAlreadyExists.
func (s *Service) ImportProducts(ctx context.Context, products []NewProduct) ([]int64, error) {
	if len(products) == 0 {
		return nil, nil
	}
	rows := make([]dbgen.ProductImportParams, len(products))
	skus := make([]string, len(products))
	index := make(map[string]int, len(products)) // SKU → position
	for i, p := range products {
		if err := p.validate(i); err != nil {
			return nil, err
		}
		if j, dup := index[p.SKU]; dup {
			return nil, invalid("products %d and %d have the same SKU %q", j, i, p.SKU)
		}
		index[p.SKU], skus[i] = i, p.SKU
		rows[i] = dbgen.ProductImportParams{Sku: p.SKU, Name: p.Name, UnitPrice: p.UnitPrice, TaxRate: p.TaxRate}
		if p.Description != "" {
			rows[i].Description = &p.Description
		}
	}
	return uow.DoResult(ctx, s.uow, func(ctx context.Context, q *dbgen.Queries) ([]int64, error) {
		s.countAttempt(ctx)
		if _, err := q.ProductImport(ctx, rows); err != nil {
			return nil, fmt.Errorf("copy products: %w", translate(err, nil))
		}
		created, err := q.ProductIDsBySKU(ctx, skus)
		if err != nil {
			return nil, fmt.Errorf("read product IDs: %w", err)
		}
		ids := make([]int64, len(products))
		stock := make([]dbgen.StockImportParams, len(created))
		for i, c := range created {
			ids[index[c.Sku]] = c.ID
			stock[i] = dbgen.StockImportParams{ProductID: c.ID, OnHand: products[index[c.Sku]].OnHand}
		}
		if _, err := q.StockImport(ctx, stock); err != nil {
			return nil, fmt.Errorf("copy stock: %w", translate(err, nil))
		}
		return ids, nil
	}, uow.Retry(uow.DefaultRetry), uow.Name("erp.ImportProducts"))
}

func (p NewProduct) validate(i int) error {
	switch {
	case p.SKU == "":
		return invalid("product %d: SKU must not be empty", i)
	case p.Name == "":
		return invalid("product %s: name must not be empty", p.SKU)
	case p.UnitPrice.IsNegative() || !p.UnitPrice.Equal(p.UnitPrice.Truncate(2)):
		return invalid("product %s: unit price %s must be a non-negative amount in cents", p.SKU, p.UnitPrice)
	case p.TaxRate.IsNegative() || p.TaxRate.GreaterThanOrEqual(decimal.NewFromInt(1)) || !p.TaxRate.Equal(p.TaxRate.Truncate(4)):
		return invalid("product %s: tax rate %s must be in [0, 1) with at most 4 decimals", p.SKU, p.TaxRate)
	case p.OnHand < 0:
		return invalid("product %s: opening stock %d must not be negative", p.SKU, p.OnHand)
	}
	return nil
}

// AdjustStock adds delta (negative to remove) to a product's stock and
// returns the new level. Stock never goes below zero: such a delta gives
// ErrOutOfStock and changes nothing.
func (s *Service) AdjustStock(ctx context.Context, productID int64, delta int32) (int32, error) {
	if delta == 0 {
		return 0, invalid("stock delta must not be zero")
	}
	onHand, err := s.uow.Queries(ctx).StockAdjust(ctx, dbgen.StockAdjustParams{ProductID: productID, Delta: delta})
	if err != nil {
		return 0, fmt.Errorf("adjust stock of product %d: %w", productID, translate(err, ErrUnknownProduct))
	}
	return onHand, nil
}

// StockLevels returns every product's stock and sales, by product ID, read
// from one snapshot: its own read-only repeatable-read unit of work, so not
// inside another one (ErrNotOutermost).
func (s *Service) StockLevels(ctx context.Context) ([]StockLevel, error) {
	return uow.DoResult(ctx, s.uow, func(ctx context.Context, q *dbgen.Queries) ([]StockLevel, error) {
		stock, err := q.StockList(ctx)
		if err != nil {
			return nil, fmt.Errorf("list stock: %w", err)
		}
		sales, err := q.OrderLineSoldByProduct(ctx)
		if err != nil {
			return nil, fmt.Errorf("list sales: %w", err)
		}
		sold := make(map[int64]int64, len(sales))
		for _, r := range sales {
			sold[r.ProductID] = r.Sold
		}
		levels := make([]StockLevel, len(stock))
		for i, r := range stock {
			levels[i] = StockLevel{ProductID: r.Product.ID, SKU: r.Product.Sku, Name: r.Product.Name, OnHand: r.OnHand, Sold: sold[r.Product.ID]}
		}
		return levels, nil
	}, uow.ReadOnly(), uow.Isolation(pgx.RepeatableRead), uow.Name("erp.StockLevels"))
}
