package loadgen

import (
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {0, time.Microsecond}, {1, 10000 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		if d := float64(got-tc.want) / float64(tc.want); d < -0.04 || d > 0.04 {
			t.Errorf("q%.2f = %v, want %v within 4%%", tc.q, got, tc.want)
		}
	}
	if h.Count() != 10000 || h.Max() != 10*time.Millisecond {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
}

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v += 7 {
		b := bucketOf(v)
		if b < prev || bucketLow(b) > v || bucketLow(b+1) <= v {
			t.Fatalf("value %d in bucket %d [%d, %d)", v, b, bucketLow(b), bucketLow(b+1))
		}
		prev = b
	}
	if b := bucketOf(1<<64 - 1); b >= histBuckets {
		t.Fatalf("largest value in bucket %d of %d", b, histBuckets)
	}
}

func TestHistogramRecordAllocatesNothing(t *testing.T) {
	h := new(Histogram)
	if a := testing.AllocsPerRun(1000, func() { h.Record(1234 * time.Nanosecond) }); a != 0 {
		t.Errorf("Record allocates %v times", a)
	}
}

// TestHistogramTail: 0.2% of slow observations are past p99 and at p99.9.
func TestHistogramTail(t *testing.T) {
	var h Histogram
	for range 10000 {
		h.Record(time.Millisecond)
	}
	for range 20 {
		h.Record(100 * time.Millisecond)
	}
	near := func(got, want time.Duration) bool {
		d := float64(got-want) / float64(want)
		return d > -0.04 && d < 0.04
	}
	if p99, p999 := h.Quantile(0.99), h.Quantile(0.999); !near(p99, time.Millisecond) || !near(p999, 100*time.Millisecond) {
		t.Errorf("p99 %v, p99.9 %v; want 1ms, 100ms", p99, p999)
	}
	var u Histogram
	for i := 1; i <= 100000; i++ {
		u.Record(time.Duration(i) * time.Microsecond)
	}
	if got := u.Quantile(0.999); !near(got, 99900*time.Microsecond) {
		t.Errorf("uniform p99.9 %v, want 99.9ms", got)
	}
}
