package pgtypes_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/internal/pgtypes"
)

// BenchmarkRegister measures what Register adds to each new connection (a
// database with two enums), next to opening the connection itself:
//
//	go test -run '^$' -bench . -benchtime 2000x ./internal/pgtypes/
func BenchmarkRegister(b *testing.B) {
	dbURL := dbtest.NewURL(b, dbtest.WithMigrations(ticketMigrations))
	ctx := context.Background()
	for _, mode := range []string{"cache_statement", "simple_protocol"} {
		cfg, err := pgx.ParseConfig(dbURL + "&default_query_exec_mode=" + mode)
		require.NoError(b, err)
		b.Run("register/"+mode, func(b *testing.B) {
			conn, err := pgx.ConnectConfig(ctx, cfg)
			require.NoError(b, err)
			defer conn.Close(ctx)
			for b.Loop() {
				if err := pgtypes.Register(ctx, conn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	cfg, err := pgx.ParseConfig(dbURL)
	require.NoError(b, err)
	b.Run("connect", func(b *testing.B) {
		for b.Loop() {
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			_ = conn.Close(ctx)
		}
	})
	b.Run("connect+select1", func(b *testing.B) {
		for b.Loop() {
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol); err != nil {
				b.Fatal(err)
			}
			_ = conn.Close(ctx)
		}
	})
	b.Run("connect+register", func(b *testing.B) {
		for b.Loop() {
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := pgtypes.Register(ctx, conn); err != nil {
				b.Fatal(err)
			}
			_ = conn.Close(ctx)
		}
	})
}
