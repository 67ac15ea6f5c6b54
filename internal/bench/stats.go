package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method; 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// median returns the median of ds (the lower middle for an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// rotate returns s rotated left by k.
func rotate[T any](s []T, k int) []T {
	if len(s) == 0 {
		return nil
	}
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

// spread is one cell's TPS over a baseline's, measured side by side. Ratio
// is over the whole cells (transactions summed over time summed, across the
// rounds); Min and Max are the lowest and highest per-round ratio, each
// round's TPS over the baseline's TPS in the same round, so that a
// difference smaller than Max−Min reads as noise. Rounds is how many rounds
// the range is over (0 when unknown: Min and Max are then Ratio).
type spread struct {
	Ratio, Min, Max float64
	Rounds          int
}

// String formats s as "1.21 (1.10–1.32)", or "1.21" over fewer than two
// rounds.
func (s spread) String() string {
	if s.Rounds < 2 {
		return fmt.Sprintf("%.2f", s.Ratio)
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.Ratio, s.Min, s.Max)
}

// times formats s as a factor: "1.21× (1.10–1.32)".
func (s spread) times() string {
	if s.Rounds < 2 {
		return fmt.Sprintf("%.2f×", s.Ratio)
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", s.Ratio, s.Min, s.Max)
}

// newSpread returns the ratio of tps to baseTPS with the range of the
// per-round ratios rounds[i]/baseRounds[i]. Rounds the two do not share, or
// whose baseline is 0, are left out of the range.
func newSpread(tps, baseTPS float64, rounds, baseRounds []float64) spread {
	s := spread{Ratio: ratio(tps, baseTPS), Min: math.Inf(1), Max: math.Inf(-1)}
	for i := range min(len(rounds), len(baseRounds)) {
		if baseRounds[i] == 0 {
			continue
		}
		r := rounds[i] / baseRounds[i]
		s.Min, s.Max = min(s.Min, r), max(s.Max, r)
		s.Rounds++
	}
	if s.Rounds == 0 {
		s.Min, s.Max = s.Ratio, s.Ratio
	}
	return s
}
