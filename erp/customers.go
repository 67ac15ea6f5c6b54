package erp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cortexerp/datalayer/dbgen"
)

// NewCustomer is what CreateCustomer needs.
type NewCustomer struct {
	Name  string
	Email string
}

// Customer is a registered customer.
type Customer struct {
	ID        int64
	PublicID  uuid.UUID
	Name      string
	Email     string
	CreatedAt time.Time
}

// CreateCustomer registers a customer; an e-mail already registered gives
// ErrAlreadyExists.
func (s *Service) CreateCustomer(ctx context.Context, c NewCustomer) (Customer, error) {
	switch at := strings.LastIndex(c.Email, "@"); {
	case strings.TrimSpace(c.Name) == "":
		return Customer{}, invalid("customer name must not be empty")
	case at < 1 || at == len(c.Email)-1:
		return Customer{}, invalid("customer e-mail %q must look like name@domain", c.Email)
	}
	row, err := s.uow.Queries(ctx).CustomerCreate(ctx, dbgen.CustomerCreateParams{Name: c.Name, Email: c.Email})
	if err != nil {
		return Customer{}, fmt.Errorf("create customer: %w", translate(err, nil))
	}
	return Customer{ID: row.ID, PublicID: row.PublicID, Name: row.Name, Email: row.Email, CreatedAt: row.CreatedAt}, nil
}
