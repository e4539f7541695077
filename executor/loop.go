//go:build linux

package executor

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// A loop drives one ring for goroutine-style I/O. Any goroutine may start
// operations on it; they are batched and submitted by one enter per batch.
// Completions are reaped by whichever goroutine gets there first: the
// flusher right after it submits, a goroutine about to park, or the poller,
// which sleeps in Go's netpoller on the ring's fd for when everyone sleeps.
// No goroutine ever blocks in io_uring_enter, so none holds an OS thread or
// a P while it waits.
type loop struct {
	id int

	mu     sync.Mutex // guards everything below, and the ring
	r      *ring.Ring
	table  opTable
	queued uint32 // SQEs prepared since the last enter
	closed bool
	cqes   [256]ring.CQE

	flushPending bool
	burst        int // CQEs the last reap that found any consumed: how many goroutines it woke
	flushCh      chan struct{}
	closing      chan struct{} // closed when the executor starts closing
	drained      chan struct{} // closed by the poller once live == 0 after closing
	pollFile     *os.File      // dup of the ring fd in Go's netpoller
	wg           sync.WaitGroup

	stats    loopStats
	lastRing ring.Stats // the ring's counters when it was closed

	net netLoop // networking's provided buffers and counters (netbuf.go)

	fdMu sync.Mutex
	fds  map[*sysFD]struct{} // descriptors open on this loop, closed by the executor's Close
}

type loopStats struct {
	started, completed, batches, sqFullWaits, cancels atomic.Uint64
}

func newLoop(id int, entries uint32, opts func(uint32) []ring.Option, closing chan struct{}) (*loop, error) {
	r, err := newRingShrinking(entries, min(entries, minLoopEntries), opts)
	if err != nil {
		return nil, err
	}
	dup, err := unix.FcntlInt(uintptr(r.Fd()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		unchargeRing(r)
		r.Close()
		return nil, os.NewSyscallError("dup ring fd", err)
	}
	unix.SetNonblock(dup, true)
	l := &loop{
		id:       id,
		r:        r,
		flushCh:  make(chan struct{}, 1),
		closing:  closing,
		drained:  make(chan struct{}),
		pollFile: os.NewFile(uintptr(dup), "io_uring"),
		fds:      make(map[*sysFD]struct{}),
	}
	l.wg.Add(2)
	go func() { labelLoop("flusher", id); l.flusher() }()
	go func() { labelLoop("poller", id); l.poller() }()
	return l, nil
}

// startSpec says how an op starts: alone, or followed by a LINK_TIMEOUT of
// linkTS (if the op has not completed by then, the kernel cancels it and its
// CQE says -ECANCELED).
type startSpec struct {
	linked bool
	linkTS unix.Timespec
	now    bool // submit at once if it would go alone (startLocked)
}

// start takes a slot, has prep fill in an SQE, and queues it for the next batch.
func (l *loop) start(prep func(*ring.SQE, *op), spec startSpec) (*op, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.isClosing() {
		return nil, ErrClosed
	}
	return l.startLocked(prep, spec)
}

// inlineBurst is the most CQEs the last reap may have taken for startLocked
// to submit an op at once: two are one goroutine's own SEND and the one
// completion it made arrive (the reply it provoked, on a connection of the
// same loop).
const inlineBurst = 2

// startLocked is the one start path of the goroutine loops.
//
// With spec.now, an op that would go alone in the flusher's batch (nothing
// else queued, no flush coming, and the last reap took at most inlineBurst
// CQEs, so no other goroutine is likely about to queue its SQE) is
// submitted here, with a non-waiting enter, and what completed at once is
// reaped: a SEND that the socket takes, the usual case, is then done before
// its caller would park, and neither the flusher nor the caller is
// scheduled for it. After a reap that woke several goroutines, their SQEs
// are left to the flusher, which submits them in one batch.
func (l *loop) startLocked(prep func(*ring.SQE, *op), spec startSpec) (*op, error) {
	if spec.linked && l.r.SQSpace() < 2 {
		l.submitLocked()
	}
	alone := spec.now && l.queued == 0 && !l.flushPending && l.burst <= inlineBurst
	sqe, err := l.sqeLocked()
	if err != nil {
		return nil, err
	}
	o := l.table.alloc(l)
	prep(sqe, o)
	l.table.begin(o, sqe)
	if spec.linked {
		sqe.SetFlags(ring.SQEIOLink)
		o.linkTS = spec.linkTS
		tsqe, err := l.sqeLocked()
		if err != nil { // unreachable: space for two was made above
			return nil, err
		}
		tsqe.PrepLinkTimeout(&o.linkTS, 0)
		tsqe.UserData = udIgnore
		l.queued++
	}
	l.stats.started.Add(1)
	if alone {
		l.queued++
		if err := l.submitLocked(); err == nil && l.queued == 0 {
			l.reapLocked()
			return o, nil
		}
		l.flushLocked() // what did not go in goes with the flusher
		return o, nil
	}
	l.queueLocked()
	return o, nil
}

// startBatch is start for len(ops) ops at once: prep(i, ...) fills in the
// i-th SQE, all under one lock, and the batch (with whatever else was queued)
// goes to the kernel in one enter right away; what completed at once is
// reaped before it returns. It returns how many ops it started, each stored
// in ops; on an error the ones started must still be waited for and released.
func (l *loop) startBatch(ops []*op, prep func(i int, sqe *ring.SQE, o *op)) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.isClosing() {
		return 0, ErrClosed
	}
	for i := range ops {
		o, err := l.startLocked(func(sqe *ring.SQE, o *op) { prep(i, sqe, o) }, startSpec{})
		if err != nil {
			return i, err
		}
		ops[i] = o
	}
	l.submitLocked()
	l.reapLocked()
	return len(ops), nil
}

// sqeLocked returns a free SQE, submitting the queued batch first if the SQ
// is full: a full SQ is back-pressure, never an error for the caller.
func (l *loop) sqeLocked() (*ring.SQE, error) {
	for {
		sqe, err := l.r.GetSQE()
		if err != ring.ErrSQFull {
			return sqe, err
		}
		l.stats.sqFullWaits.Add(1)
		if err := l.submitLocked(); err != nil && !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.EAGAIN) {
			return nil, err
		}
		l.reapLocked()
	}
}

// release returns o's slot once its terminal CQE has been seen.
func (l *loop) release(o *op) {
	l.mu.Lock()
	l.table.put(o)
	l.mu.Unlock()
}

// queueLocked counts a prepared SQE and makes sure a flush is coming.
func (l *loop) queueLocked() {
	l.queued++
	l.flushLocked()
}

// flushLocked makes sure a flush is coming.
func (l *loop) flushLocked() {
	if !l.flushPending {
		l.flushPending = true
		select {
		case l.flushCh <- struct{}{}:
		default:
		}
	}
}

// flusher submits queued SQEs in batches. It yields first, so that every
// goroutine already runnable queues its SQE before the one enter for all.
func (l *loop) flusher() {
	defer l.wg.Done()
	for {
		select {
		case <-l.flushCh:
		case <-l.drained:
			return
		}
		runtime.Gosched()
		l.mu.Lock()
		l.flushPending = false
		l.submitLocked()
		l.reapLocked()
		l.mu.Unlock()
	}
}

// submitLocked passes every queued SQE to the kernel in one enter. On EBUSY
// or EAGAIN the SQEs stay queued, completions are reaped, and it tries again.
func (l *loop) submitLocked() error {
	for l.queued > 0 && !l.closed {
		n, err := l.r.Submit()
		if err == nil {
			l.stats.batches.Add(1)
			l.queued -= min(uint32(n), l.queued)
			if l.r.SQReady() == 0 {
				l.queued = 0
			}
			return nil
		}
		if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EAGAIN) {
			if l.reapLocked() == 0 {
				runtime.Gosched()
			}
			continue
		}
		return err
	}
	return nil
}

// reapReady reaps completions already in the CQ, without waiting for the
// loop's lock if someone else holds it (they will reap). It leaves queued
// SQEs to the flusher, so they go out in one batch.
func (l *loop) reapReady() {
	if l.mu.TryLock() {
		l.reapLocked()
		l.mu.Unlock()
	}
}

// reapLocked consumes every CQE in the CQ and returns how many.
func (l *loop) reapLocked() int {
	total := 0
	for !l.closed {
		n := l.r.PeekBatch(l.cqes[:])
		if n == 0 {
			return total
		}
		for i := range n {
			l.completeLocked(&l.cqes[i])
		}
		l.r.CQAdvance(uint32(n))
		total += n
		l.burst = total
	}
	return total
}

// completeLocked routes one CQE to its op (opTable.dispatch).
func (l *loop) completeLocked(c *ring.CQE) {
	if !l.table.dispatch(c) {
		return
	}
	l.stats.completed.Add(1)
	if l.table.live == 0 && l.isClosing() {
		l.closeDrainedLocked()
	}
}

// cancel asks the kernel to cancel o. The op's own CQE still follows.
func (l *loop) cancel(o *op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || !l.table.markCancel(o) {
		return
	}
	l.cancelLocked(opTarget(o))
	l.submitLocked()
}

// cancelFd asks the kernel to cancel every request on fd.
func (l *loop) cancelFd(fd int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.cancelLocked(fdTarget(fd))
	l.submitLocked()
}

// cancelFromCQE asks the kernel to cancel o from its own onCQE: the loop is
// locked and its CQ being reaped, so it queues and submits the request
// without reaping, and if the SQ has no room, a goroutine queues it.
func (l *loop) cancelFromCQE(o *op) {
	if !l.table.markCancel(o) {
		return
	}
	t := opTarget(o)
	if l.r.SQSpace() > 0 {
		l.cancelLocked(t)
		// Submit now, so the cap it enforces holds however late the
		// flusher runs; no reaping here, in the middle of a reap.
		if n, err := l.r.Submit(); err == nil {
			l.queued -= min(uint32(n), l.queued)
		}
		return
	}
	go func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.closed {
			l.cancelLocked(t) // a stale user data matches nothing
		}
	}()
}

// cancelLocked queues one ASYNC_CANCEL for t.
func (l *loop) cancelLocked(t cancelTarget) {
	sqe, err := l.sqeLocked()
	if err != nil {
		return
	}
	prepCancel(sqe, t)
	l.stats.cancels.Add(1)
	l.queueLocked()
}

// poller sleeps in Go's netpoller until the ring has completions, reaps them,
// and sleeps again. It ends when the loop has drained after closing.
func (l *loop) poller() {
	defer l.wg.Done()
	rc, err := l.pollFile.SyscallConn()
	if err != nil {
		panic(err) // an *os.File always has a SyscallConn
	}
	rc.Read(func(uintptr) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.queued > 0 {
			l.submitLocked()
		}
		l.reapLocked()
		select {
		case <-l.drained:
			return true
		default:
			return false
		}
	})
}

func (l *loop) isClosing() bool {
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// beginClose cancels everything in flight. Called once the executor's
// closing channel is closed; ops started afterwards fail with ErrClosed.
func (l *loop) beginClose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.table.live == 0 {
		l.closeDrainedLocked()
		return
	}
	l.cancelLocked(ringTarget)
	l.submitLocked()
	l.reapLocked()
}

func (l *loop) closeDrainedLocked() {
	select {
	case <-l.drained:
	default:
		close(l.drained)
	}
}

// closeFDs closes every descriptor still open on the loop (conns, listeners,
// files the user did not close), so the executor's Close leaves none behind.
func (l *loop) closeFDs() {
	for _, f := range l.openFDs() {
		f.closeByExecutor()
	}
}

// openFDs returns the descriptors open on the loop now.
func (l *loop) openFDs() []*sysFD {
	l.fdMu.Lock()
	defer l.fdMu.Unlock()
	open := make([]*sysFD, 0, len(l.fds))
	for f := range l.fds {
		open = append(open, f)
	}
	return open
}

// finish waits for the loop's goroutines and closes the ring. Every op must
// have reached its terminal CQE (drained).
func (l *loop) finish() error {
	<-l.drained
	for _, f := range l.openFDs() {
		f.forceClose()
	}
	l.pollFile.Close() // wakes the poller, which sees drained and returns
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.lastRing = l.r.Stats()
	unchargeRing(l.r)
	err := l.r.Close()
	l.net.ringClosed()
	return err
}
