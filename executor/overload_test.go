//go:build linux

package executor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kasync-go/kasync/ring"
)

// sleepers runs n concurrent Sleeps of d and returns how many failed.
func sleepers(e *Executor, n int, d time.Duration) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.Sleep(context.Background(), d); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// TestTinyCQOverflowLosesNothing: 2,000 timers expire at once into a CQ of 8
// entries. The kernel holds back what does not fit; every completion must
// still arrive, none dropped.
func TestTinyCQOverflowLosesNothing(t *testing.T) {
	e := newTestExecutor(t, WithLoops(1), WithEntries(8), WithRingOptions(ring.WithCQSize(8)))
	if failed := sleepers(e, 2000, 5*time.Millisecond); failed != 0 {
		t.Fatalf("%d sleeps failed", failed)
	}
	s := e.Stats()
	if s.Completed != 2000 || s.InFlight != 0 || s.CQDropped != 0 {
		t.Fatalf("stats: %+v", s)
	}
	if s.CQOverflows == 0 {
		t.Fatalf("the CQ never overflowed; the test proves nothing: %+v", s)
	}
	t.Logf("%+v", s)
}

// TestFullSQIsBackpressure: with 2 SQ slots and 2,000 submitters, a full SQ
// makes submitters flush and retry; no caller sees an error.
func TestFullSQIsBackpressure(t *testing.T) {
	e := newTestExecutor(t, WithLoops(1), WithEntries(2))
	if failed := sleepers(e, 2000, time.Millisecond); failed != 0 {
		t.Fatalf("%d sleeps failed", failed)
	}
	if s := e.Stats(); s.SQFullWaits == 0 || s.Completed != 2000 {
		t.Fatalf("stats: %+v", s)
	}
}

// TestCancellationStorm cancels 5,000 operations at once from many goroutines.
func TestCancellationStorm(t *testing.T) {
	e := newTestExecutor(t, WithLoops(2))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 5000)
	for range 5000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.Sleep(ctx, time.Hour)
		}()
	}
	for e.Stats().InFlight < 5000 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != context.Canceled {
			t.Fatalf("sleep: %v", err)
		}
	}
	if s := e.Stats(); s.InFlight != 0 || s.Completed != 5000 {
		t.Fatalf("stats: %+v", s)
	}
}
