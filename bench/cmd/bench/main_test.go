package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBadFlagsExitWithUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-clients", "1,x"},
		{"-scale", "-3"},
		{"-rounds", "-1"},
		{"-clients", "4,4"},
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
