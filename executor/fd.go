package executor

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// sysFD is a file descriptor shared by the operations in flight on it
// (kasync's ARef). Its whole lifetime is one atomic state word, in the
// manner of Go's internal/poll fdMutex: three bits (closing, closed by the
// executor, forced) and a reference count, one for the open descriptor and
// one per operation in flight. Close sets the closing bit, which refuses new
// references, cancels the operations in flight, and drops the open
// reference; the last reference really closes the descriptor, so its number
// cannot be reused by the process while the kernel might still act on it.
type sysFD struct {
	l  *loop
	fd int

	state  atomic.Uint64
	closed chan struct{} // closed when the descriptor is really closed
}

const (
	fdClosing uint64 = 1 << iota // Close began: no new references
	fdByExec                     // the executor's Close closed it, not its owner
	fdForced                     // closed by forceClose: references no longer count
	fdRefShift = iota            // the reference count is the bits above
	fdRef      = 1 << fdRefShift
)

func newSysFD(l *loop, fd int) *sysFD {
	f := &sysFD{l: l, fd: fd, closed: make(chan struct{})}
	f.state.Store(fdRef)
	l.fdMu.Lock()
	l.fds[f] = struct{}{}
	l.fdMu.Unlock()
	return f
}

// acquire takes a reference for one operation. Once Close began it fails
// with errClosedFD, or ErrClosed if the executor's Close closed f.
func (f *sysFD) acquire() error {
	for {
		s := f.state.Load()
		switch {
		case s&fdByExec != 0:
			return ErrClosed
		case s&fdClosing != 0:
			return errClosedFD
		}
		if f.state.CompareAndSwap(s, s+fdRef) {
			return nil
		}
	}
}

// isClosing reports whether Close has begun.
func (f *sysFD) isClosing() bool { return f.state.Load()&fdClosing != 0 }

// closedByExecutor reports that the executor's Close closed f.
func (f *sysFD) closedByExecutor() bool { return f.state.Load()&fdByExec != 0 }

// releaseRef drops a reference; the last one closes the descriptor.
func (f *sysFD) releaseRef() {
	s := f.state.Add(^uint64(fdRef - 1))
	if s>>fdRefShift == 0 && s&fdForced == 0 {
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

// Close marks the descriptor closing, cancels every operation on it, and
// drops the open reference. It returns at once; wait on f.closed for the
// real close. Closing twice returns false.
func (f *sysFD) Close() bool { return f.close(0) }

// closeByExecutor is Close for the executor's Close: operations and owners
// then see ErrClosed rather than a closed descriptor. A descriptor whose
// owner already closed it stays closed by its owner.
func (f *sysFD) closeByExecutor() { f.close(fdByExec) }

func (f *sysFD) close(by uint64) bool {
	for {
		s := f.state.Load()
		if s&fdClosing != 0 {
			return false
		}
		if f.state.CompareAndSwap(s, s|fdClosing|by) {
			if s>>fdRefShift > 1 {
				f.l.cancelFd(f.fd)
			}
			f.releaseRef()
			return true
		}
	}
}

// forceClose closes a descriptor whose owner still holds references, once
// the loop has drained: the kernel is done with every operation, and the
// owner's later releaseRef does nothing.
func (f *sysFD) forceClose() {
	for {
		s := f.state.Load()
		if s&fdForced != 0 || s>>fdRefShift == 0 {
			return
		}
		if f.state.CompareAndSwap(s, s|fdForced|fdClosing) {
			f.closeNow()
			return
		}
	}
}
