//go:build linux

package executor

import (
	"sync"
	"testing"
)

func TestNoWaitLock(t *testing.T) {
	var l NoWaitLock
	if !l.TryLock() {
		t.Fatal("TryLock on a free lock failed")
	}
	if l.Unlock() {
		t.Fatal("Unlock reported contention nobody caused")
	}
	l.TryLock()
	if l.TryLock() {
		t.Fatal("TryLock on a held lock succeeded")
	}
	if !l.Unlock() {
		t.Fatal("Unlock missed a failed TryLock")
	}
	if !l.TryLock() {
		t.Fatal("lock not free after Unlock")
	}
	l.Unlock()
}

// TestNoWaitLockNoLostWork: work announced by failed TryLocks is never lost,
// because the holder sees the contention and does it before leaving.
func TestNoWaitLockNoLostWork(t *testing.T) {
	var l NoWaitLock
	var mu sync.Mutex
	pending, done := 0, 0
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				mu.Lock()
				pending++
				mu.Unlock()
				for l.TryLock() {
					mu.Lock()
					done += pending
					pending = 0
					mu.Unlock()
					if !l.Unlock() {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if pending != 0 || done != 64*1000 {
		t.Fatalf("pending %d done %d", pending, done)
	}
}

func TestNoWaitLockUnlockUnlockedPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	var l NoWaitLock
	l.Unlock()
}
