//go:build linux

package ring

import (
	"sync/atomic"
	"syscall"
	"time"
)

// PeekCQE returns the oldest completion without waiting, or syscall.EAGAIN if
// there is none. When the kernel holds completions back (CQ overflow, pending
// task work) it enters the kernel once to flush them. The CQE stays valid
// until CQAdvance or SeenCQE.
func (r *Ring) PeekCQE() (*CQE, error) {
	if r.closed {
		return nil, ErrClosed
	}
	if c := r.peek(); c != nil {
		return c, nil
	}
	if r.cqNeedsEnter() {
		if _, err := r.enter(0, 0, r.enterFlags|enterGetEvents, nil, 0, r.rawEnter); err != nil && err != syscall.EINTR {
			return nil, err
		}
		if c := r.peek(); c != nil {
			return c, nil
		}
	}
	return nil, syscall.EAGAIN
}

// WaitCQE returns the oldest completion, waiting for one if the CQ is empty.
func (r *Ring) WaitCQE() (*CQE, error) {
	for {
		if r.closed {
			return nil, ErrClosed
		}
		if c := r.peek(); c != nil {
			return c, nil
		}
		if _, err := r.enter(0, 1, r.enterFlags|enterGetEvents, nil, 0, r.rawEnter); err != nil && err != syscall.EINTR {
			return nil, err
		}
	}
}

// WaitCQETimeout is WaitCQE that gives up after d with syscall.ETIME.
func (r *Ring) WaitCQETimeout(d time.Duration) (*CQE, error) {
	if c, err := r.PeekCQE(); err != syscall.EAGAIN {
		return c, err
	}
	if _, err := r.SubmitAndWaitTimeout(1, d); err != nil {
		return nil, err
	}
	return r.PeekCQE()
}

// PeekBatch copies up to len(dst) ready completions into dst and returns how
// many. It does not consume them: call CQAdvance(n) when done.
func (r *Ring) PeekBatch(dst []CQE) int {
	if r.closed {
		return 0
	}
	cq := &r.cq
	head := cq.head
	ready := atomic.LoadUint32(cq.ktail) - head
	if ready == 0 && r.cqNeedsEnter() {
		r.enter(0, 0, r.enterFlags|enterGetEvents, nil, 0, r.rawEnter)
		ready = atomic.LoadUint32(cq.ktail) - head
	}
	if uint64(ready) < uint64(len(dst)) {
		dst = dst[:ready]
	}
	if len(dst) <= 4 {
		// A call to memmove costs more than copying a few CQEs in line.
		for i := range dst {
			dst[i] = cq.cqes[(head+uint32(i))&cq.mask&(maxCQEntries-1)]
		}
		return len(dst)
	}
	// Two runs at most: from head to the end of the ring, then from its start.
	start := head & cq.mask
	n := copy(dst, cq.cqes[start:cq.entries])
	copy(dst[n:], cq.cqes[:])
	return len(dst)
}

// CQReady returns how many completions are in the CQ.
func (r *Ring) CQReady() uint32 {
	if r.closed {
		return 0
	}
	return atomic.LoadUint32(r.cq.ktail) - r.cq.head
}

// CQAdvance hands n consumed CQEs back to the kernel.
func (r *Ring) CQAdvance(n uint32) {
	if r.closed || n == 0 {
		return
	}
	r.stats.Reaped += uint64(n)
	r.cq.head += n
	atomic.StoreUint32(r.cq.khead, r.cq.head)
}

// SeenCQE consumes one CQE returned by PeekCQE or WaitCQE.
func (r *Ring) SeenCQE(*CQE) { r.CQAdvance(1) }

// Overflowed returns the kernel's count of CQEs it had to drop because the CQ
// was full and it could not hold them back (never, with FeatNoDrop, unless
// memory ran out).
func (r *Ring) Overflowed() uint32 {
	if r.closed {
		return 0
	}
	return atomic.LoadUint32(r.cq.koverflow)
}

func (r *Ring) peek() *CQE {
	head := r.cq.head
	if head == atomic.LoadUint32(r.cq.ktail) {
		return nil
	}
	return &r.cq.cqes[head&r.cq.mask&(maxCQEntries-1)]
}
