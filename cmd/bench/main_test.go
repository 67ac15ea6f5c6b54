package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBadFlagsExitWithUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-clients", "1,x"},
		{"-scale", "-3"},
		{"-rounds", "-1"},
		{"-clients", "4,4"},
		{"-rtt", "1ms,x"},
		{"-rtt", "-1ms"},
		{"-rtt", "1ms,1ms"},
		{"-rtt", "1ms", "-rtt-clients", "0"},
		{"-no-such-flag"},
		{"extra-argument"},
	} {
		require.Equal(t, 2, run(args), "%q", args)
	}
}

func TestParseInts(t *testing.T) {
	t.Parallel()
	got, err := parseInts("1, 4,16")
	require.NoError(t, err)
	require.Equal(t, []int{1, 4, 16}, got)
	require.Equal(t, "1,4,16", joinInts(got))
	_, err = parseInts("")
	require.Error(t, err)
}

func TestParseDurations(t *testing.T) {
	t.Parallel()
	got, err := parseDurations("0, 0.5ms,1ms,2ms")
	require.NoError(t, err)
	require.Equal(t, []time.Duration{0, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond}, got)
	got, err = parseDurations("")
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = parseDurations("1ms,")
	require.EqualError(t, err, `-rtt "1ms,": want comma-separated durations such as 0,0.5ms,1ms`)
}
