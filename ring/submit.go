//go:build linux

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
	sq := &r.sq
	tail := sq.tail
	if tail-sq.head >= sq.entries {
		// Full as far as we knew: see how far the kernel has got since.
		sq.head = atomic.LoadUint32(sq.khead)
		if tail-sq.head >= sq.entries {
			r.stats.SQFull++
			return nil, ErrSQFull
		}
	}
	sq.tail = tail + 1
	return &sq.sqes[tail&sq.mask&(MaxEntries-1)], nil
}

// SQReady returns how many SQEs were handed out and not yet consumed by the kernel.
func (r *Ring) SQReady() uint32 {
	if r.closed {
		return 0
	}
	r.sq.head = atomic.LoadUint32(r.sq.khead)
	return r.sq.tail - r.sq.head
}

// SQSpace returns how many more SQEs GetSQE can hand out now.
func (r *Ring) SQSpace() uint32 { return r.sq.entries - r.SQReady() }

// Submit passes every prepared SQE to the kernel and returns how many it took.
//
// If the kernel answers EBUSY or EAGAIN (completions it could not post yet, or
// no memory for a request), the SQEs it did not take stay queued: reap
// completions, then call Submit again. Nothing is dropped.
func (r *Ring) Submit() (int, error) { return r.submit(0, nil, r.rawEnter) }

// SubmitAndWait submits and then waits until at least waitNr completions are
// ready (EINTR is retried). On a ring without SQPOLL, IOPOLL or WithRawEnter
// these are two steps: a submitting enter that does not wait, then, only if
// fewer than waitNr completions are in the CQ by then, a second enter that
// waits (see submitThenWait).
func (r *Ring) SubmitAndWait(waitNr uint32) (int, error) { return r.submit(waitNr, nil, r.rawEnter) }

// SubmitAndSleep is SubmitAndWait whose wait is always a blocking system
// call the Go scheduler sees, even on a ring made WithRawEnter: while the
// thread sleeps in the kernel, its P runs other goroutines. It is for a
// loop that keeps its P with raw enters while it is busy and hands it back
// when it has nothing to do.
func (r *Ring) SubmitAndSleep(waitNr uint32) (int, error) { return r.submit(waitNr, nil, false) }

// SubmitAndWaitTimeout is SubmitAndWait that gives up after d, with an error
// for which errors.Is(err, syscall.ETIME) holds, in the same system call
// (IORING_ENTER_EXT_ARG, Linux 5.11). When it submitted SQEs, the kernel
// reports their count and no error even if the wait ran out: check CQReady.
// Without FeatExtArg it fails with EOPNOTSUPP.
func (r *Ring) SubmitAndWaitTimeout(waitNr uint32, d time.Duration) (int, error) {
	return r.submitTimeout(waitNr, d, r.rawEnter)
}

// SubmitAndSleepTimeout is SubmitAndWaitTimeout whose wait is always a
// blocking system call, as SubmitAndSleep's.
func (r *Ring) SubmitAndSleepTimeout(waitNr uint32, d time.Duration) (int, error) {
	return r.submitTimeout(waitNr, d, false)
}

func (r *Ring) submitTimeout(waitNr uint32, d time.Duration, raw bool) (int, error) {
	if !r.HasFeature(FeatExtArg) {
		return 0, os.NewSyscallError("io_uring_enter: wait with timeout", syscall.EOPNOTSUPP)
	}
	r.waitTS = unix.NsecToTimespec(int64(max(d, 0)))
	r.waitArg = getEventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.waitTS)))}
	return r.submit(waitNr, &r.waitArg, raw)
}

// submit is the one submitting call; raw makes a wait a raw system call
// (WithRawEnter), else a blocking one.
func (r *Ring) submit(waitNr uint32, arg *getEventsArg, raw bool) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	sq := &r.sq
	sqpoll := r.params.Flags&SetupSQPoll != 0
	for {
		// A release store after the SQE writes; under SQPOLL also the full
		// barrier the kernel asks for between it and the load of the flags
		// below (sync/atomic's stores and loads are sequentially consistent).
		atomic.StoreUint32(sq.ktail, sq.tail)
		sq.head = atomic.LoadUint32(sq.khead)
		pending := sq.tail - sq.head
		flags := r.enterFlags
		enter := false
		if sqpoll {
			if pending > 0 && atomic.LoadUint32(sq.kflags)&sqNeedWakeup != 0 {
				flags |= enterSQWakeup
				enter = true
			}
		} else if pending > 0 {
			enter = true
		}
		if waitNr > 0 && pending > 0 && !sqpoll && !raw && r.params.Flags&SetupIOPoll == 0 {
			return r.submitThenWait(pending, waitNr, flags, arg)
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
		n, err := r.enter(pending, waitNr, flags, argp, argSize, raw)
		if err == syscall.EINTR {
			continue
		}
		if sqpoll && err == nil {
			n = int(pending)
		}
		r.stats.Submitted += uint64(n)
		return n, err
	}
}

// submitThenWait is SubmitAndWait(waitNr) in two steps, for a ring the kernel
// submits from the calling thread: an enter that only submits, as a raw system
// call, then the wait, as a blocking one, only if the completions are not in
// the CQ yet. The first cannot block, so it can skip the Go scheduler's system
// call bookkeeping; requests that complete inline (NOPs, sends and receives
// that find their socket ready, reads from the page cache) then cost one raw
// enter instead of one blocking enter. When the wait does block, the extra
// raw enter is small next to the sleep.
//
// It answers as one io_uring_enter(pending, waitNr, GETEVENTS) would: the
// count submitted, and no error from the wait (ETIME, EINTR) once SQEs went in.
func (r *Ring) submitThenWait(pending, waitNr, flags uint32, arg *getEventsArg) (int, error) {
	if r.cqNeedsEnter() {
		flags |= enterGetEvents // flush overflowed CQEs or run deferred task work
	}
	n, err := r.enter(pending, 0, flags, nil, 0, false)
	for err == syscall.EINTR {
		n, err = r.enter(pending, 0, flags, nil, 0, false)
	}
	r.stats.Submitted += uint64(n)
	if err != nil || uint32(n) != pending {
		return n, err // the kernel would not wait either
	}
	if atomic.LoadUint32(r.cq.ktail)-r.cq.head >= waitNr {
		return n, nil // what the wait would have found at once
	}
	flags = r.enterFlags | enterGetEvents
	var argp unsafe.Pointer
	var argSize uintptr
	if arg != nil {
		flags |= enterExtArg
		argp, argSize = unsafe.Pointer(arg), unsafe.Sizeof(*arg)
	}
	r.enter(0, waitNr, flags, argp, argSize, false)
	return n, nil
}

// enter is the one io_uring_enter call. Errors are bare errnos: EINTR and ETIME
// are part of normal operation and must not allocate.
//
// An enter that does not wait (min_complete 0, no SQ_WAIT) is a raw system
// call: it returns in about the time it takes to submit, so the scheduler's
// entersyscall/exitsyscall bookkeeping would cost more than it could save.
// An enter that waits is a raw one only if raw (WithRawEnter, but for
// SubmitAndSleep).
func (r *Ring) enter(toSubmit, minComplete, flags uint32, arg unsafe.Pointer, argSize uintptr, raw bool) (int, error) {
	r.stats.Enters++
	var n uintptr
	var errno syscall.Errno
	if raw || (minComplete == 0 && flags&enterSQWait == 0) {
		// syscall's, not unix's: unix.RawSyscall6 is an assembly jump to it,
		// reached through an ABI wrapper that costs a few ns per call.
		n, _, errno = syscall.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(toSubmit),
			uintptr(minComplete), uintptr(flags), uintptr(arg), argSize)
	} else {
		n, _, errno = syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(toSubmit),
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
