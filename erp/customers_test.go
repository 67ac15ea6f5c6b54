package erp_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/erp"
)

func TestCreateCustomer(t *testing.T) {
	t.Parallel()
	f := setup(t)

	c, err := f.svc.CreateCustomer(t.Context(), erp.NewCustomer{Name: "Grace", Email: "grace@example.com"})
	require.NoError(t, err)
	stored, err := f.q.CustomerGet(t.Context(), c.ID)
	require.NoError(t, err)
	require.Equal(t, "Grace", stored.Name)
	require.Equal(t, c.PublicID, stored.PublicID)

	tests := []struct {
		name    string
		in      erp.NewCustomer
		wantErr error
		wantMsg string
	}{
		{"an e-mail already registered", erp.NewCustomer{Name: "Other", Email: "grace@example.com"}, erp.ErrAlreadyExists, "e-mail already registered"},
		{"an empty name", erp.NewCustomer{Name: " ", Email: "x@example.com"}, erp.ErrInvalidInput, "name must not be empty"},
		{"an e-mail without @", erp.NewCustomer{Name: "X", Email: "example.com"}, erp.ErrInvalidInput, `e-mail "example.com"`},
		{"an e-mail without domain", erp.NewCustomer{Name: "X", Email: "x@"}, erp.ErrInvalidInput, "name@domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.CreateCustomer(t.Context(), tt.in)
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
	require.Equal(t, 2, f.count(t, "SELECT count(*) FROM customers"), "Ada and Grace only")
}
