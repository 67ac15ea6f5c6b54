package erp

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cortexerp/datalayer/dbgen"
)

// NewCoupon is what CreateCoupon needs.
type NewCoupon struct {
	Code           string
	PercentOff     decimal.Decimal // 10 for 10 %, in (0, 100]
	MaxRedemptions int32           // positive
	ExpiresAt      time.Time       // zero: never
}

// CreateCoupon creates a discount coupon; a code already used gives
// ErrAlreadyExists.
func (s *Service) CreateCoupon(ctx context.Context, c NewCoupon) error {
	switch {
	case c.Code == "":
		return invalid("coupon code must not be empty")
	case !c.PercentOff.IsPositive() || c.PercentOff.GreaterThan(decimal.NewFromInt(100)) || !c.PercentOff.Equal(c.PercentOff.Truncate(2)):
		return invalid("coupon %s: percent off %s must be in (0, 100] with at most 2 decimals", c.Code, c.PercentOff)
	case c.MaxRedemptions <= 0:
		return invalid("coupon %s: max redemptions %d must be positive", c.Code, c.MaxRedemptions)
	}
	params := dbgen.CouponCreateParams{Code: c.Code, PercentOff: c.PercentOff, MaxRedemptions: c.MaxRedemptions}
	if !c.ExpiresAt.IsZero() {
		params.ExpiresAt = &c.ExpiresAt
	}
	if err := s.uow.Queries(ctx).CouponCreate(ctx, params); err != nil {
		return fmt.Errorf("create coupon %s: %w", c.Code, translate(err, nil))
	}
	return nil
}
