package bench

import (
	"fmt"
	"slices"
	"time"
)

// Sample is repeated measurements of one quantity.
type Sample []float64

// Min is the smallest measurement (the least disturbed by a noisy host).
func (s Sample) Min() float64 {
	if len(s) == 0 {
		return 0
	}
	return slices.Min(s)
}

// Max is the largest measurement.
func (s Sample) Max() float64 {
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s)
}

// Mean is the average of the sample.
func (s Sample) Mean() float64 {
	var sum float64
	for _, v := range s {
		sum += v
	}
	return sum / float64(len(s))
}

// Median is the middle measurement (mean of the two middle ones).
func (s Sample) Median() float64 {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

// dur formats nanoseconds with a unit that fits.
func dur(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.1f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

// minMed formats a sample of nanoseconds as "min (med median)".
func minMed(s Sample) string {
	return fmt.Sprintf("%s (med %s)", dur(s.Min()), dur(s.Median()))
}

func nanos(d time.Duration) float64 { return float64(d.Nanoseconds()) }

// bytesIEC formats a byte count in KiB/MiB.
func bytesIEC(b float64) string {
	switch {
	case b < 1<<10:
		return fmt.Sprintf("%.0f B", b)
	case b < 1<<20:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	case b < 1<<30:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", b/(1<<30))
}
