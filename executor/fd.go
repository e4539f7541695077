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
	byExec  bool          // the executor's Close closed it, not its owner
	forced  bool          // closed by forceClose; references no longer count
	closed  chan struct{} // closed when the descriptor is really closed
}

func newSysFD(l *loop, fd int) *sysFD {
	f := &sysFD{l: l, fd: fd, refs: 1, closed: make(chan struct{})}
	l.fdMu.Lock()
	l.fds[f] = struct{}{}
	l.fdMu.Unlock()
	return f
}

// acquire takes a reference for one operation. Once Close began it fails
// with errClosedFD, or ErrClosed if the executor's Close closed f.
func (f *sysFD) acquire() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.byExec:
		return ErrClosed
	case f.closing:
		return errClosedFD
	}
	f.refs++
	return nil
}

// isClosing reports whether Close has begun.
func (f *sysFD) isClosing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closing
}

// closedByExecutor reports that the executor's Close closed f.
func (f *sysFD) closedByExecutor() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byExec
}

// releaseRef drops a reference; the last one closes the descriptor.
func (f *sysFD) releaseRef() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0 && !f.forced
	f.mu.Unlock()
	if last {
		f.closeNow()
	}
}

// closeNow really closes the descriptor and forgets it.
func (f *sysFD) closeNow() {
	unix.Close(f.fd)
	close(f.closed)
	f.l.fdMu.Lock()
	delete(f.l.fds, f)
	f.l.fdMu.Unlock()
}

// forceClose closes a descriptor whose owner still holds references, once
// the loop has drained: the kernel is done with every operation, and the
// owner's later releaseRef does nothing.
func (f *sysFD) forceClose() {
	f.mu.Lock()
	if f.forced || f.refs == 0 {
		f.mu.Unlock()
		return
	}
	f.forced, f.closing = true, true
	f.mu.Unlock()
	f.closeNow()
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
