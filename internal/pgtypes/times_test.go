package pgtypes_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
)

// TestValuesThatDoNotFitTimeTime: infinite timestamps and dates have no
// time.Time; scanning one is an error naming it, in binary (the default exec
// mode) and text (simple protocol) format, never a silent zero time.
func TestValuesThatDoNotFitTimeTime(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t, dbtest.WithoutMigrations())
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		for _, c := range []struct{ value, want string }{
			{"'infinity'::timestamptz", "cannot scan Infinity into *time.Time"},
			{"'-infinity'::timestamp with time zone", "cannot scan -Infinity into *time.Time"},
			{"'infinity'::timestamp", "cannot scan Infinity into *time.Time"},
			{"'-infinity'::timestamp", "cannot scan -Infinity into *time.Time"},
			{"'infinity'::date", "cannot scan Infinity into *time.Time"},
			{"'-infinity'::date", "cannot scan -Infinity into *time.Time"},
		} {
			t.Run(mode.String()+" "+c.value, func(t *testing.T) {
				ctx := t.Context()
				var v time.Time
				err := pool.QueryRow(ctx, "SELECT "+c.value, mode).Scan(&v)
				require.EqualError(t, err, "can't scan into dest[0] (col: "+column(c.value)+"): "+c.want)
				var p *time.Time // the nullable form
				err = pool.QueryRow(ctx, "SELECT "+c.value, mode).Scan(&p)
				require.EqualError(t, err, "can't scan into dest[0] (col: "+column(c.value)+"): "+c.want)
			})
		}
	}
}

// TestTimesOutOfRangeAreRejected: a time.Time past PostgreSQL's range is an
// error from the server, in every type it maps to.
func TestTimesOutOfRangeAreRejected(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t, dbtest.WithoutMigrations())
	for _, c := range []struct {
		typ string
		far time.Time
	}{
		{"timestamptz", time.Date(294277, 1, 1, 0, 0, 0, 0, time.UTC)}, // PostgreSQL ends in 294276
		{"timestamp", time.Date(294277, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"date", time.Date(5874898, 1, 1, 0, 0, 0, 0, time.UTC)}, // PostgreSQL ends in 5874897
		{"date", time.Date(-4714, 1, 1, 0, 0, 0, 0, time.UTC)},   // and starts in 4714 BC
	} {
		t.Run(c.typ+" "+c.far.Format("2006"), func(t *testing.T) {
			want := "ERROR: timestamp out of range (SQLSTATE 22008)"
			if c.typ == "date" {
				want = "ERROR: date out of range (SQLSTATE 22008)"
			}
			var got time.Time
			err := pool.QueryRow(t.Context(), "SELECT $1::"+c.typ, c.far).Scan(&got)
			require.EqualError(t, err, want, "scanned %v", got)
		})
	}
}

// column is the name PostgreSQL gives SELECT value's column.
func column(value string) string {
	switch {
	case strings.HasSuffix(value, "::date"):
		return "date"
	case strings.HasSuffix(value, "::timestamp"):
		return "timestamp"
	default:
		return "timestamptz"
	}
}
