package executor

import (
	"sync"

	"golang.org/x/sys/unix"
)

// sysFD is a file descriptor shared by the operations in flight on it
// (kasync's ARef). Close cancels those operations, and the descriptor is
// really closed only after the last of them completed, so its number cannot
// be reused by the process while the kernel might still act on it.
type sysFD struct {
	l  *loop
	fd int

	mu      sync.Mutex
	refs    int // 1 while open, plus one per operation in flight
	closing bool
	closed  chan struct{} // closed when the descriptor is really closed
}

func newSysFD(l *loop, fd int) *sysFD {
	return &sysFD{l: l, fd: fd, refs: 1, closed: make(chan struct{})}
}

// acquire takes a reference for one operation; it fails once Close began.
func (f *sysFD) acquire() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.refs++
	return true
}

// isClosing reports whether Close has begun.
func (f *sysFD) isClosing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closing
}

// releaseRef drops a reference; the last one closes the descriptor.
func (f *sysFD) releaseRef() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if last {
		unix.Close(f.fd)
		close(f.closed)
	}
}

// Close marks the descriptor closing, cancels every operation on it, and
// drops the open reference. It returns at once; wait on f.closed for the
// real close. Closing twice returns false.
func (f *sysFD) Close() bool {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return false
	}
	f.closing = true
	inflight := f.refs > 1
	f.mu.Unlock()
	if inflight {
		f.l.cancelFd(f.fd)
	}
	f.releaseRef()
	return true
}
