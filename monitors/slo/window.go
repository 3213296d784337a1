package slo

import (
	"math"
	"sync"
	"time"

	"github.com/stagegate/stagegate/events"
)

// Histogram layout: bucket i holds latencies up to bucketBase^i ms; bucket 0
// holds everything up to 1 ms. 160 buckets of 10% reach past an hour.
const (
	nBuckets   = 160
	bucketBase = 1.1
	nSlices    = 10 // a window is this many time slices
)

var logBase = math.Log(bucketBase)

type histogram [nBuckets]uint32

func bucketOf(ms float64) int {
	if ms <= 1 {
		return 0
	}
	return min(nBuckets-1, int(math.Ceil(math.Log(ms)/logBase)))
}

func (h *histogram) add(ms float64) { h[bucketOf(ms)]++ }

func (h *histogram) merge(o *histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

func (h *histogram) count() int {
	n := 0
	for _, c := range h {
		n += int(c)
	}
	return n
}

// quantile returns the upper bound of the bucket holding quantile q (an
// over-estimate by at most 10%).
func (h *histogram) quantile(q float64) float64 {
	n := h.count()
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(n)))
	seen := 0
	for i, c := range h {
		seen += int(c)
		if seen >= rank {
			return math.Pow(bucketBase, float64(i))
		}
	}
	return math.Pow(bucketBase, nBuckets-1)
}

// slice is one time slice of a series.
type slice struct {
	start          int64 // slice index (unix nanos / slice length)
	n, errs, falls int
	lat, ttft      histogram
}

// series is one (trial, model, stage) window.
type series struct {
	mu       sync.Mutex
	slices   [nSlices]slice
	reported map[string]time.Time
	used     uint64
}

// add records the sample of in at now.
func (s *series) add(now time.Time, window time.Duration, in *events.Interaction) {
	length := int64(window) / nSlices
	idx := now.UnixNano() / length
	sl := &s.slices[idx%nSlices]
	if sl.start != idx {
		*sl = slice{start: idx}
	}
	sl.n++
	switch in.Status {
	case events.StatusUpstreamError, events.StatusPartial:
		sl.errs++
	}
	if in.FallbackFrom != "" {
		sl.falls++
	}
	if in.Latency.TotalMS > 0 {
		sl.lat.add(in.Latency.TotalMS)
	}
	if in.Stream && in.Latency.FirstTokenMS > 0 {
		sl.ttft.add(in.Latency.FirstTokenMS)
	}
}

// merged is a window's totals.
type merged struct {
	n, errs, fallbacks int
	lat, ttft          histogram
}

// window merges the slices of the window ending at now.
func (s *series) window(now time.Time, window time.Duration) merged {
	length := int64(window) / nSlices
	cur := now.UnixNano() / length
	var m merged
	for i := range s.slices {
		sl := &s.slices[i]
		if sl.n == 0 || sl.start <= cur-nSlices || sl.start > cur {
			continue
		}
		m.n += sl.n
		m.errs += sl.errs
		m.fallbacks += sl.falls
		m.lat.merge(&sl.lat)
		m.ttft.merge(&sl.ttft)
	}
	return m
}
