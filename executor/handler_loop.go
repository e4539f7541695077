//go:build linux

package executor

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// hring is an io_uring loop's own part of hloop.
type hring struct {
	r     *ring.Ring
	table opTable
	cqes  [256]ring.CQE

	bufs *bufPool // receive buffers (bufpool.go)

	acceptOp                 *op
	acceptCB                 func(res int32, flags uint32)
	acceptLog                time.Time // last accept error logged
	acceptRR                 int       // Unix hand-off round robin
	acceptCancel, wakeCancel bool      // their ASYNC_CANCEL went out (stopping)

	efdBuf [8]byte
	wakeOp *op
	wakeCB func(res int32, flags uint32)

	closeCB func(res int32, flags uint32)
	zc      int // zero-copy send threshold, 0 = off
}

// newHLoop prepares a loop; the eventfd is made here, before any other
// goroutine may post to the loop. The ring is made by run, on its thread.
func newHLoop(s *Server, id, lnfd int) (*hloop, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	l := &hloop{s: s, id: id, h: s.h, cfg: &s.cfg, lnfd: lnfd, efd: efd, exited: make(chan struct{})}
	l.io = uringIO{l}
	l.acceptCB = l.onAccept
	l.wakeCB = l.onWake
	l.closeCB = l.onClosed
	l.bindHandler()
	return l, nil
}

// run is the loop goroutine.
func (l *hloop) run(inits chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	labelLoop("serve", l.id)
	l.goid.Store(currentGoroutine())
	err := l.setup()
	inits <- err
	if err == nil {
		if l.tick != nil {
			l.runTick(time.Now())
		}
		for l.turn() {
		}
	}
	l.teardown()
	close(l.exited)
}

// keepPSlice bounds a busy ServeKeepP loop's raw wait in the kernel, so that
// it hands its P to other goroutines at least this often; a slice that runs
// out with nothing to show makes the loop idle (hloop.idle).
const keepPSlice = time.Millisecond

// turn runs one loop turn; false once the loop has stopped.
//
// A ServeKeepP loop keeps its P only while it is busy: its waits are raw
// enters of at most keepPSlice. Once one runs out with no completion, the
// loop is idle, and its next waits are ordinary blocking enters
// (SubmitAndSleep), without a timeout unless a timer asks for one, that
// hand the P back to the scheduler, until a completion comes. An idle
// server so sleeps in the kernel and costs no CPU, and a busy one pays the
// P hand-off only on the first turn after an idle millisecond.
func (l *hloop) turn() bool {
	l.beginTurn()
	l.flush()
	if l.over() {
		return false
	}
	var err error
	d, ok := l.waitTimeout()
	sliced := l.cfg.keepP && !l.idle && (!ok || d > keepPSlice)
	if sliced {
		d, ok = keepPSlice, true
	}
	switch {
	case l.idle && ok:
		_, err = l.r.SubmitAndSleepTimeout(1, d)
	case l.idle:
		_, err = l.r.SubmitAndSleep(1)
	case ok:
		_, err = l.r.SubmitAndWaitTimeout(1, d)
	default:
		_, err = l.r.SubmitAndWait(1)
	}
	l.st[ctrTurns]++
	if l.cfg.keepP {
		l.idle = err == syscall.ETIME && l.r.CQReady() == 0 && (sliced || l.idle)
		if err == syscall.ETIME || l.st[ctrTurns]%64 == 0 {
			// A loop that keeps its P lends it out now and then, so other
			// goroutines (timers, signals, the GC) need not wait for the
			// scheduler to preempt a thread that is mostly in the kernel.
			runtime.Gosched()
		}
	}
	if err != nil && err != syscall.ETIME && err != syscall.EBUSY && err != syscall.EAGAIN && err != syscall.EINTR {
		l.fail(err)
		return false
	}
	l.reap()
	return true
}

// fail gives up after the ring broke (a bug or a kernel refusal): every
// connection is closed with the error, and the ring's Close cancels what
// is in flight.
func (l *hloop) fail(err error) {
	l.failed = fmt.Errorf("executor: io_uring_enter: %w", err)
	l.cfg.logger.Error("kasync: serve loop stops", "loop", l.id, "op", "io_uring_enter", "err", l.failed)
	for len(l.conns) > 0 {
		c := l.conns[len(l.conns)-1]
		c.err = l.failed
		l.finishConn(c) // closes directly: l.failed is set
	}
}

// teardown releases the loop's resources on its thread.
func (l *hloop) teardown() {
	l.closeInbox()
	if l.lnfd >= 0 {
		unix.Close(l.lnfd)
	}
	if l.bufs != nil {
		l.bufs.close()
	}
	if l.r != nil {
		unchargeRing(l.r)
		l.r.Close()
	}
	unix.Close(l.efd)
}

// sqeSpace makes room for n SQEs, submitting what is queued if need be.
func (l *hloop) sqeSpace(n uint32) bool {
	if l.r.SQSpace() >= n {
		return true
	}
	l.r.Submit()
	return l.r.SQSpace() >= n
}

// sqe returns a free SQE; callers made room with sqeSpace.
func (l *hloop) sqe() *ring.SQE {
	s, err := l.r.GetSQE()
	if err != nil {
		panic("executor: no SQE after sqeSpace: " + err.Error())
	}
	return s
}

// newOp starts an op whose CQEs go to cb.
func (l *hloop) newOp(sqe *ring.SQE, cb func(int32, uint32)) *op {
	o := l.table.alloc(nil)
	o.onCQE = cb
	l.table.begin(o, sqe)
	return o
}

// cancelOp asks the kernel to cancel o; o's own CQE still follows.
func (l *hloop) cancelOp(o *op) {
	if l.table.markCancel(o) {
		prepCancel(l.sqe(), opTarget(o))
	}
}

// flush turns state changed this turn into SQEs: receives to (re)arm or
// cancel, sends, closes, and the loop's own accept and wake-up reads.
func (l *hloop) flush() {
	if l.failed != nil {
		return
	}
	if !l.sqeSpace(4) {
		return
	}
	l.flushAccept()
	switch {
	case l.stopping && l.wakeOp != nil && !l.wakeCancel:
		l.wakeCancel = true
		l.cancelOp(l.wakeOp)
	case !l.stopping && l.wakeOp == nil:
		s := l.sqe()
		s.PrepRead(l.efd, l.efdBuf[:], 0)
		l.wakeOp = l.newOp(s, l.wakeCB)
	}
	l.reconcileDirty() // as far as the SQ has room; the rest waits a turn
}

func (l *hloop) onClosed(int32, uint32) {}

func (l *hloop) onWake(res int32, flags uint32) {
	l.wakeOp = nil // re-armed by flush; the inbox is drained at the turn's start
}

// reap dispatches every completion in the CQ, then publishes the receive
// buffers recycled meanwhile.
func (l *hloop) reap() {
	for l.r.CQReady() > 0 {
		n := l.r.PeekBatch(l.cqes[:])
		l.r.CQAdvance(uint32(n))
		l.st[ctrCQEs] += uint64(n)
		for i := 0; i < n; i++ {
			l.table.dispatch(&l.cqes[i])
		}
	}
	if l.bufs != nil {
		l.bufs.publish()
	}
}
