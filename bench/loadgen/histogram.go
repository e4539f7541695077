package loadgen

import (
	"math/bits"
	"time"
)

// Histogram counts durations in log-linear buckets: 32 buckets per power of
// two, so a reported quantile is within about 3% of the true value. Record is
// a few instructions and allocates nothing; the whole histogram is 15 KiB.
type Histogram struct {
	counts [histBuckets]uint64
	total  uint64
	max    uint64
}

const (
	subBits     = 5
	subCount    = 1 << subBits
	histBuckets = (64 - subBits + 1) * subCount
)

// bucketOf maps a value in nanoseconds to its bucket: values below subCount
// have a bucket each; above, the bucket holds the leading subBits+1 bits.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subCount + int((v>>shift)&(subCount-1))
}

// bucketLow returns the smallest value that falls into bucket i.
func bucketLow(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	return (subCount | uint64(i%subCount)) << shift
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.total++
	h.max = max(h.max, v)
}

// Reset forgets every observation.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.total }

// Max returns the largest observation.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the value below which a fraction q (0..1) of the
// observations fall: the middle of the bucket that holds it.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketLow(i), bucketLow(i+1)
			return time.Duration(min(lo+(hi-lo)/2, h.max))
		}
	}
	return time.Duration(h.max)
}

// Merge adds o's observations to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}
