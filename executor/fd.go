//go:build linux

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

	// beforeExecClose, if set, runs as the executor's Close begins closing
	// the descriptor, while it can still answer: a Conn looks up the
	// addresses its errors name, as its own Close does.
	beforeExecClose func()
}

const (
	fdClosing  uint64 = 1 << iota // Close began (owner's or executor's): no new references
	fdOwner                       // its owner (Conn, File...) closed it
	fdByExec                      // the executor's Close closed it before its owner did
	fdForced                      // closed by forceClose: references no longer count
	fdRefShift = iota             // the reference count is the bits above
	fdRef      = 1 << fdRefShift
)

// newSysFD makes and registers the descriptor of a new owner.
func newSysFD(l *loop, fd int) *sysFD {
	f := makeSysFD(l, fd)
	f.register()
	return f
}

// makeSysFD makes the descriptor without registering it, for an owner that
// sets more up (beforeExecClose) before the executor's Close can see it.
func makeSysFD(l *loop, fd int) *sysFD {
	f := &sysFD{l: l, fd: fd, closed: make(chan struct{})}
	f.state.Store(fdRef)
	return f
}

// register puts f in its loop's set, which the executor's Close closes.
func (f *sysFD) register() {
	f.l.fdMu.Lock()
	f.l.fds[f] = struct{}{}
	f.l.fdMu.Unlock()
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

// isClosing reports whether Close (the owner's or the executor's) has begun.
func (f *sysFD) isClosing() bool { return f.state.Load()&fdClosing != 0 }

// closedByOwner reports that its owner's Close began.
func (f *sysFD) closedByOwner() bool { return f.state.Load()&fdOwner != 0 }

// closedByExecutor reports that the executor's Close closed f.
func (f *sysFD) closedByExecutor() bool { return f.state.Load()&fdByExec != 0 }

// closedErr is nil while f is open, else what a call on it reports:
// ErrClosed if the executor closed it, errClosedFD if its owner did.
func (f *sysFD) closedErr() error {
	switch s := f.state.Load(); {
	case s&fdByExec != 0:
		return ErrClosed
	case s&fdClosing != 0:
		return errClosedFD
	}
	return nil
}

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

// Close is the owner's Close: it marks the descriptor closing, cancels
// every operation on it, and drops the open reference. It returns at once;
// wait on f.closed for the real close. Only the owner's first Close returns
// true.
func (f *sysFD) Close() bool {
	first, open := f.markClosed(fdOwner)
	if open {
		f.dropOpen()
	}
	return first
}

// closeByExecutor is Close for the executor's Close: operations and owners
// then see ErrClosed rather than a closed descriptor. A descriptor whose
// owner already closed it stays closed by its owner.
func (f *sysFD) closeByExecutor() {
	if f.beforeExecClose != nil && f.state.Load()&fdClosing == 0 {
		f.beforeExecClose()
	}
	if _, open := f.markClosed(fdByExec); open {
		f.dropOpen()
	}
}

// markClosed is the first half of a Close by the owner (fdOwner) or the
// executor (fdByExec): it sets the bits, so that no new reference is taken,
// and nothing else, so that an owner may call it under its own lock. first
// reports the first Close of its kind; open, that f was open until now, and
// the caller must follow with dropOpen.
func (f *sysFD) markClosed(by uint64) (first, open bool) {
	for {
		s := f.state.Load()
		if s&by != 0 || (by == fdByExec && s&fdClosing != 0) {
			return false, false
		}
		if f.state.CompareAndSwap(s, s|fdClosing|by) {
			return true, s&fdClosing == 0
		}
	}
}

// dropOpen is the second half of a Close: it cancels every operation in
// flight on f and drops the open reference.
func (f *sysFD) dropOpen() {
	if f.state.Load()>>fdRefShift > 1 {
		f.l.cancelFd(f.fd)
	}
	f.releaseRef()
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
