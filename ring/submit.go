package ring

import (
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// GetSQE hands out the next free submission slot. It returns ErrSQFull when
// every slot holds an SQE not yet submitted (Submit, then try again), and
// ErrClosed on a closed ring. The slot is not cleared: a Prep method fills in
// every field; set flags and user data after it.
func (r *Ring) GetSQE() (*SQE, error) {
	if r.closed {
		return nil, ErrClosed
	}
	head := atomic.LoadUint32(r.sq.khead)
	if r.sq.tail-head >= r.sq.entries {
		r.stats.SQFull++
		return nil, ErrSQFull
	}
	sqe := &r.sq.sqes[r.sq.tail&r.sq.mask]
	r.sq.tail++
	return sqe, nil
}

// SQReady returns how many SQEs were handed out and not yet consumed by the kernel.
func (r *Ring) SQReady() uint32 { return r.sq.tail - atomic.LoadUint32(r.sq.khead) }

// SQSpace returns how many more SQEs GetSQE can hand out now.
func (r *Ring) SQSpace() uint32 { return r.sq.entries - r.SQReady() }

// Submit passes every prepared SQE to the kernel and returns how many it took.
//
// If the kernel answers EBUSY or EAGAIN (completions it could not post yet, or
// no memory for a request), the SQEs it did not take stay queued: reap
// completions, then call Submit again. Nothing is dropped.
func (r *Ring) Submit() (int, error) { return r.submit(0, nil) }

// SubmitAndWait submits and then waits until at least waitNr completions are
// ready (EINTR is retried).
func (r *Ring) SubmitAndWait(waitNr uint32) (int, error) { return r.submit(waitNr, nil) }

// SubmitAndWaitTimeout is SubmitAndWait that gives up after d, with an error
// for which errors.Is(err, syscall.ETIME) holds, in the same system call
// (IORING_ENTER_EXT_ARG, Linux 5.11). When it submitted SQEs, the kernel
// reports their count and no error even if the wait ran out: check CQReady.
// Without FeatExtArg it fails with EOPNOTSUPP.
func (r *Ring) SubmitAndWaitTimeout(waitNr uint32, d time.Duration) (int, error) {
	if !r.HasFeature(FeatExtArg) {
		return 0, os.NewSyscallError("io_uring_enter: wait with timeout", syscall.EOPNOTSUPP)
	}
	r.waitTS = unix.NsecToTimespec(int64(max(d, 0)))
	r.waitArg = getEventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.waitTS)))}
	return r.submit(waitNr, &r.waitArg)
}

func (r *Ring) submit(waitNr uint32, arg *getEventsArg) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	for {
		atomic.StoreUint32(r.sq.ktail, r.sq.tail)
		pending := r.SQReady()
		flags := r.enterFlags
		enter := false
		if r.params.Flags&SetupSQPoll != 0 {
			if pending > 0 && atomic.LoadUint32(r.sq.kflags)&sqNeedWakeup != 0 {
				flags |= enterSQWakeup
				enter = true
			}
		} else if pending > 0 {
			enter = true
		}
		if waitNr > 0 || r.cqNeedsEnter() {
			flags |= enterGetEvents
			enter = true
		}
		if !enter {
			return int(pending), nil
		}
		var argp unsafe.Pointer
		var argSize uintptr
		if arg != nil {
			flags |= enterExtArg
			argp, argSize = unsafe.Pointer(arg), unsafe.Sizeof(*arg)
		}
		n, err := r.enter(pending, waitNr, flags, argp, argSize)
		if err == syscall.EINTR {
			continue
		}
		if r.params.Flags&SetupSQPoll != 0 && err == nil {
			n = int(pending)
		}
		r.stats.Submitted += uint64(n)
		return n, err
	}
}

// enter is the one io_uring_enter call. Errors are bare errnos: EINTR and ETIME
// are part of normal operation and must not allocate.
func (r *Ring) enter(toSubmit, minComplete, flags uint32, arg unsafe.Pointer, argSize uintptr) (int, error) {
	r.stats.Enters++
	var n uintptr
	var errno syscall.Errno
	if r.rawEnter {
		n, _, errno = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(toSubmit),
			uintptr(minComplete), uintptr(flags), uintptr(arg), argSize)
	} else {
		n, _, errno = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(toSubmit),
			uintptr(minComplete), uintptr(flags), uintptr(arg), argSize)
	}
	if errno != 0 {
		if errno == syscall.EBUSY || errno == syscall.EAGAIN {
			r.stats.Busy++
		}
		return 0, errno
	}
	return int(n), nil
}

// cqNeedsEnter reports that completions are waiting in the kernel rather than
// in the CQ: overflowed CQEs to flush, or deferred task work to run.
func (r *Ring) cqNeedsEnter() bool {
	f := atomic.LoadUint32(r.sq.kflags)
	if f&sqCQOverflow != 0 {
		r.stats.OverflowFlushes++
		return true
	}
	return f&sqTaskrun != 0
}
