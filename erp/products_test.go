package erp_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/erp"
)

func TestImportProductsCreatesProductsAndStock(t *testing.T) {
	t.Parallel()
	f := setup(t)

	ids, err := f.svc.ImportProducts(t.Context(), []erp.NewProduct{
		{SKU: "B", Name: "Bolt", UnitPrice: dec("0.15"), TaxRate: dec("0.2"), OnHand: 500},
		{SKU: "A", Name: "Anvil", Description: "heavy", UnitPrice: dec("120.00"), TaxRate: dec("0.055"), OnHand: 2},
	})
	require.NoError(t, err)
	require.Len(t, ids, 2)

	products, err := f.q.ProductListByIDs(t.Context(), ids)
	require.NoError(t, err)
	bySKU := map[string]int64{}
	for _, p := range products {
		bySKU[p.Sku] = p.ID
	}
	require.Equal(t, []int64{bySKU["B"], bySKU["A"]}, ids, "IDs in the order given")
	require.Equal(t, int32(500), f.onHand(t, ids[0]))
	require.Equal(t, int32(2), f.onHand(t, ids[1]))

	levels, err := f.svc.StockLevels(t.Context())
	require.NoError(t, err)
	require.Len(t, levels, 2)
}

func TestImportProductsIsAllOrNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.products(t, 1, "1.00", "0.2") // SKU-0
	good := erp.NewProduct{SKU: "NEW", Name: "New", UnitPrice: dec("1"), TaxRate: dec("0.2")}
	tests := []struct {
		name    string
		in      []erp.NewProduct
		wantErr error
		wantMsg string
	}{
		{"a SKU already taken", []erp.NewProduct{good, {SKU: "SKU-0", Name: "Dup", UnitPrice: dec("1"), TaxRate: dec("0")}}, erp.ErrAlreadyExists, "SKU already exists"},
		{"a SKU twice", []erp.NewProduct{good, good}, erp.ErrInvalidInput, `same SKU "NEW"`},
		{"an empty SKU", []erp.NewProduct{{Name: "X", UnitPrice: dec("1")}}, erp.ErrInvalidInput, "SKU must not be empty"},
		{"a price in tenths of cents", []erp.NewProduct{{SKU: "X", Name: "X", UnitPrice: dec("1.005")}}, erp.ErrInvalidInput, "unit price 1.005"},
		{"a negative price", []erp.NewProduct{{SKU: "X", Name: "X", UnitPrice: dec("-1")}}, erp.ErrInvalidInput, "unit price -1"},
		{"a tax rate of 100 %", []erp.NewProduct{{SKU: "X", Name: "X", UnitPrice: dec("1"), TaxRate: dec("1")}}, erp.ErrInvalidInput, "tax rate 1"},
		{"negative stock", []erp.NewProduct{{SKU: "X", Name: "X", UnitPrice: dec("1"), OnHand: -1}}, erp.ErrInvalidInput, "opening stock -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.ImportProducts(t.Context(), tt.in)
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM products"))
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM stock_levels"))
}

func TestAdjustStock(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.products(t, 5, "1.00", "0.2")[0]

	onHand, err := f.svc.AdjustStock(t.Context(), id, 7)
	require.NoError(t, err)
	require.Equal(t, int32(12), onHand)
	onHand, err = f.svc.AdjustStock(t.Context(), id, -12)
	require.NoError(t, err)
	require.Zero(t, onHand)

	_, err = f.svc.AdjustStock(t.Context(), id, -1)
	require.ErrorIs(t, err, erp.ErrOutOfStock)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the database error stays reachable")
	require.Equal(t, "stock_levels_on_hand_not_negative", pgErr.ConstraintName)
	require.Zero(t, f.onHand(t, id))

	_, err = f.svc.AdjustStock(t.Context(), 999, 1)
	require.ErrorIs(t, err, erp.ErrUnknownProduct)
	_, err = f.svc.AdjustStock(t.Context(), id, 0)
	require.ErrorIs(t, err, erp.ErrInvalidInput)
}
