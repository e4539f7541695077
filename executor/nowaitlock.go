package executor

import "sync/atomic"

// NoWaitLock is kasync's lock that never waits: TryLock either takes it or
// fails at once, and Unlock tells whether someone failed to take it in the
// meantime, so the holder can do their work for them before leaving. The
// zero value is unlocked.
type NoWaitLock struct {
	state atomic.Uint32
}

const (
	nwlLocked    = 1 << 0
	nwlContended = 1 << 1
)

// TryLock takes the lock if it is free. If not, it records that someone tried
// and returns false; it never waits.
func (l *NoWaitLock) TryLock() bool {
	for {
		s := l.state.Load()
		if s&nwlLocked == 0 {
			if l.state.CompareAndSwap(s, nwlLocked) {
				return true
			}
			continue
		}
		if s&nwlContended != 0 || l.state.CompareAndSwap(s, s|nwlContended) {
			return false
		}
	}
}

// Unlock releases the lock and reports whether a TryLock failed while it was
// held. Unlocking an unlocked NoWaitLock panics, as with sync.Mutex.
func (l *NoWaitLock) Unlock() (contended bool) {
	s := l.state.Swap(0)
	if s&nwlLocked == 0 {
		panic("executor: Unlock of unlocked NoWaitLock")
	}
	return s&nwlContended != 0
}
