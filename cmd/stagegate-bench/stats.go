package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// samples holds exact latencies (no bucketing, so percentiles are exact up to
// the clock's resolution).
type samples []time.Duration

// quantile returns the q-quantile (0 ≤ q ≤ 1) by the nearest-rank method on a
// sorted copy; 0 for no samples.
func (s samples) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return c.sortedQuantile(q)
}

// sortedQuantile is quantile on samples already sorted ascending.
func (s samples) sortedQuantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	rank = min(max(rank, 0), len(s)-1)
	return s[rank]
}

// dist is a summary of a latency distribution.
type dist struct {
	N                   int
	P50, P90, P99, P999 time.Duration
	Mean, Max           time.Duration
}

func summarize(s samples) dist {
	if len(s) == 0 {
		return dist{}
	}
	c := slices.Clone(s)
	slices.Sort(c)
	var sum time.Duration
	for _, d := range c {
		sum += d
	}
	return dist{
		N:    len(c),
		P50:  c.sortedQuantile(0.50),
		P90:  c.sortedQuantile(0.90),
		P99:  c.sortedQuantile(0.99),
		P999: c.sortedQuantile(0.999),
		Mean: sum / time.Duration(len(c)),
		Max:  c[len(c)-1],
	}
}

// ms formats a duration in milliseconds with three significant decimals for
// sub-millisecond values.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) < 10:
		return fmt.Sprintf("%.3f", v)
	case math.Abs(v) < 100:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// signedMS is ms with an explicit sign, for added latencies.
func signedMS(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return "−" + ms(-d)
}
