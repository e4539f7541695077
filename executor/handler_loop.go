package executor

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// hloop is one loop of a Server: a goroutine locked to its OS thread that
// owns a ring (SINGLE_ISSUER + DEFER_TASKRUN, its fd registered on that
// thread), a provided-buffer ring, a listening socket and the connections
// accepted on it. Everything but the inbox is touched by that thread only.
//
// A turn: take work posted by other goroutines (inbox), run timers, turn
// every connection's changed state into SQEs (flush), then one
// io_uring_enter submits them all and waits for at least one completion,
// and the completions are dispatched inline (reap), which runs the handler.
// Operations use the same op lifecycle and generation-checked slot table
// as the goroutine loops.
type hloop struct {
	s   *Server
	id  int
	h   Handler
	cfg *serveConfig
	r   *ring.Ring
	io  connIO // the connections' I/O: uringIO, or goIO on the Go backend

	table opTable
	cqes  [256]ring.CQE

	bufs *bufPool // receive buffers (bufpool.go)

	lnfd                     int // listening socket, -1 if none (Unix: loop 0 accepts for all)
	acceptOp                 *op
	acceptCB                 func(res int32, flags uint32)
	acceptErr                bool      // accepting failed: retry at acceptAt
	acceptAt                 time.Time // when to retry
	acceptLog                time.Time // last accept error logged
	acceptRR                 int       // Unix hand-off round robin
	acceptCancel, wakeCancel bool      // their ASYNC_CANCEL went out (stopping)

	efd    int // eventfd other goroutines write to wake the loop
	efdBuf [8]byte
	wakeOp *op
	wakeCB func(res int32, flags uint32)

	closeCB func(res int32, flags uint32)
	zc      int // zero-copy send threshold, 0 = off

	conns  []*HConn
	dirty  []*HConn
	linger []*HConn

	stopping bool
	noAccept bool  // Shutdown: accept no more connections
	failed   error // the ring broke: give up on the conns

	tick     Ticker           // the Handler's optional interfaces (bindHandler)
	drainer  Drainer          //
	notifier ShutdownNotifier //
	nextTick time.Time

	st  hstats
	pub hpub

	// Inbox: work posted by other goroutines.
	mu        sync.Mutex
	inbox     []hmsg
	inboxData []byte
	spare     []hmsg
	spareData []byte
	stopReq   bool
	efdClosed bool
	notified  atomic.Bool // a wake-up is on its way

	goid   atomic.Uint64 // the loop goroutine's id (Close from a handler)
	exited chan struct{}

	// Go fallback (BackendGo): reports of the connections' reader and
	// writer goroutines, and the inbox's wake-up.
	gev   chan gevent
	gwake chan struct{}
}

type hmsg struct {
	c    *HConn
	f    func(*HConn)
	off  int // hmsgWrite: the bytes in inboxData
	n    int
	fd   int           // hmsgAdopt
	nc   net.Conn      // hmsgAdopt, Go fallback
	ch   chan struct{} // hmsgStats: closed once published
	kind uint8
}

const (
	hmsgWrite = iota
	hmsgDo
	hmsgAdopt
	hmsgStats
	hmsgNoAccept
)

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

// keepPSlice bounds a ServeKeepP loop's wait in the kernel, so an idle loop
// hands its P to other goroutines at least this often.
const keepPSlice = time.Millisecond

// turn runs one loop turn; false once the loop has stopped.
func (l *hloop) turn() bool {
	l.beginTurn()
	l.flush()
	if l.over() {
		return false
	}
	var err error
	d, ok := l.waitTimeout()
	if l.cfg.keepP && (!ok || d > keepPSlice) {
		d, ok = keepPSlice, true
	}
	if ok {
		_, err = l.r.SubmitAndWaitTimeout(1, d)
	} else {
		_, err = l.r.SubmitAndWait(1)
	}
	l.st[ctrTurns]++
	if l.cfg.keepP && (err == syscall.ETIME || l.st[ctrTurns]%64 == 0) {
		// A loop that keeps its P lends it out now and then, so other
		// goroutines (timers, signals, the GC) need not wait for the
		// scheduler to preempt a thread that is mostly in the kernel.
		runtime.Gosched()
	}
	if err != nil && err != syscall.ETIME && err != syscall.EBUSY && err != syscall.EAGAIN && err != syscall.EINTR {
		l.fail(err)
		return false
	}
	l.reap()
	return true
}

// beginTurn starts a turn of either backend's loop: the work other
// goroutines posted, then the timers that are due.
func (l *hloop) beginTurn() {
	if l.notified.Load() {
		l.drainInbox()
	}
	if l.timersActive() {
		l.runTimers(time.Now())
	}
}

// over reports whether a stopping loop is done: no connection left and
// nothing in flight.
func (l *hloop) over() bool {
	return l.stopping && l.table.live == 0 && len(l.conns) == 0
}

// fail gives up after the ring broke (a bug or a kernel refusal): every
// connection is closed with the error, and the ring's Close cancels what
// is in flight.
func (l *hloop) fail(err error) {
	l.failed = fmt.Errorf("executor: io_uring_enter: %w", err)
	l.cfg.logf("kasync: serve loop %d stops: %v", l.id, l.failed)
	for len(l.conns) > 0 {
		c := l.conns[len(l.conns)-1]
		c.err = l.failed
		l.finishConn(c) // closes directly: l.failed is set
	}
}

// closeInbox ends the inbox, for either backend: nothing more is posted,
// and what is left in it is dropped (adopted connections closed, Stats
// callers released).
func (l *hloop) closeInbox() {
	l.mu.Lock()
	l.stopReq = true
	l.efdClosed = true
	inbox := l.inbox
	l.inbox = nil
	l.mu.Unlock()
	l.publish()
	l.pub.conns.Store(0)
	for _, m := range inbox {
		switch {
		case m.kind == hmsgStats:
			close(m.ch)
		case m.kind == hmsgAdopt && m.nc != nil:
			m.nc.Close()
		case m.kind == hmsgAdopt:
			unix.Close(m.fd)
		}
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
		l.r.Close()
	}
	unix.Close(l.efd)
}

// stop asks the loop to stop (from any goroutine).
func (l *hloop) stop() {
	l.mu.Lock()
	l.stopReq = true
	l.wakeLocked()
	l.mu.Unlock()
}

// post queues m (and data, for a write) for the loop; false if the loop
// has stopped.
func (l *hloop) post(m hmsg, data []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopReq {
		return false
	}
	if data != nil {
		m.off, m.n = len(l.inboxData), len(data)
		l.inboxData = append(l.inboxData, data...)
	}
	l.inbox = append(l.inbox, m)
	l.wakeLocked()
	return true
}

var wakeOne = [8]byte{1}

// wakeLocked makes the loop's next (or current) wait return. One eventfd
// write per turn at most: notified stays set until the loop drains.
func (l *hloop) wakeLocked() {
	if !l.notified.CompareAndSwap(false, true) {
		return
	}
	if l.gwake != nil {
		select {
		case l.gwake <- struct{}{}:
		default:
		}
	} else if !l.efdClosed {
		unix.Write(l.efd, wakeOne[:])
	}
}

// drainInbox runs the work other goroutines posted.
func (l *hloop) drainInbox() {
	l.notified.Store(false)
	l.mu.Lock()
	msgs, data := l.inbox, l.inboxData
	l.inbox, l.inboxData = l.spare[:0], l.spareData[:0]
	stop := l.stopReq
	l.mu.Unlock()
	for i := range msgs {
		m := &msgs[i]
		c := m.c
		switch m.kind {
		case hmsgWrite:
			c.asyncLen.Add(-int64(m.n))
			if c.st&hsClosing == 0 {
				c.Write(data[m.off : m.off+m.n])
			}
		case hmsgDo:
			if c.st&hsClosing == 0 {
				l.callDo(c, m.f)
			}
		case hmsgAdopt:
			switch {
			case m.nc != nil && (l.stopping || stop):
				m.nc.Close()
			case m.nc != nil:
				l.gadopt(m.nc)
			case l.stopping || stop:
				unix.Close(m.fd)
			default:
				l.newConn(int32(m.fd), false)
			}
		case hmsgStats:
			l.publish()
			close(m.ch)
		case hmsgNoAccept:
			l.noAccept = true
			if l.notifier != nil {
				for i := 0; i < len(l.conns); i++ {
					if c := l.conns[i]; c.st&hsClosing == 0 {
						l.callShutdown(c)
					}
				}
			}
		}
	}
	clear(msgs)
	l.spare, l.spareData = msgs[:0], data[:0]
	if stop && !l.stopping {
		l.stopping = true
		for _, c := range l.conns {
			l.closeConn(c, ErrServerClosed, true)
		}
	}
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
