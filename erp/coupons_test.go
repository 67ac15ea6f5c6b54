package erp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/erp"
)

func TestCreateCoupon(t *testing.T) {
	t.Parallel()
	f := setup(t)
	expires := time.Now().Add(24 * time.Hour).Truncate(time.Microsecond)
	require.NoError(t, f.svc.CreateCoupon(t.Context(), erp.NewCoupon{Code: "WELCOME", PercentOff: dec("12.5"), MaxRedemptions: 3, ExpiresAt: expires}))
	c, err := f.q.CouponGet(t.Context(), "WELCOME")
	require.NoError(t, err)
	require.Equal(t, "12.5", c.PercentOff.String())
	require.True(t, expires.Equal(*c.ExpiresAt))

	tests := []struct {
		name    string
		in      erp.NewCoupon
		wantErr error
		wantMsg string
	}{
		{"a code already used", erp.NewCoupon{Code: "WELCOME", PercentOff: dec("5"), MaxRedemptions: 1}, erp.ErrAlreadyExists, "coupon code already exists"},
		{"an empty code", erp.NewCoupon{PercentOff: dec("5"), MaxRedemptions: 1}, erp.ErrInvalidInput, "code must not be empty"},
		{"no discount", erp.NewCoupon{Code: "X", MaxRedemptions: 1}, erp.ErrInvalidInput, "percent off 0"},
		{"more than 100 %", erp.NewCoupon{Code: "X", PercentOff: dec("100.01"), MaxRedemptions: 1}, erp.ErrInvalidInput, "percent off 100.01"},
		{"no redemptions", erp.NewCoupon{Code: "X", PercentOff: dec("5")}, erp.ErrInvalidInput, "max redemptions 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.svc.CreateCoupon(t.Context(), tt.in)
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM coupons"))
}
