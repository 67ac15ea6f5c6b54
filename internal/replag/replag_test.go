package replag_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/internal/replag"
)

func TestLSNRoundTrips(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		lsn, err := replag.ParseLSN(s)
		require.NoError(t, err)
		require.Equal(t, s, replag.FormatLSN(lsn))
	}
	for _, bad := range []string{"", "16", "16/", "x/1", "1/100000000"} {
		_, err := replag.ParseLSN(bad)
		require.EqualError(t, err, `"`+bad+`" is not a WAL position (like 16/B374D848)`)
	}
}

func TestHistoryLag(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := replag.NewHistory(10 * time.Second)
	require.Zero(t, h.Lag(0, t0), "nothing recorded: no lag known")
	h.Add(t0, 1000)
	h.Add(t0.Add(time.Second), 2000)
	h.Add(t0.Add(2*time.Second), 2000) // idle primary
	now := t0.Add(2 * time.Second)
	for _, c := range []struct {
		name     string
		replayed uint64
		want     time.Duration
	}{
		{"a replica that replayed the newest position has no lag, though the primary was idle", 2000, 0},
		{"a replica past the newest position has no lag", 2500, 0},
		{"halfway between two positions is interpolated", 1500, 1500 * time.Millisecond},
		{"at a position, the time since it was reached", 1000, 2 * time.Second},
		{"before every position: the age of the oldest", 10, 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, h.Lag(c.replayed, now))
		})
	}
	h.Add(t0.Add(30*time.Second), 3000)
	latest, ok := h.Latest()
	require.True(t, ok)
	require.EqualValues(t, 3000, latest)
	require.Equal(t, 28*time.Second, h.Lag(2000, t0.Add(30*time.Second)),
		"one position older than the window is kept to measure against")
}
