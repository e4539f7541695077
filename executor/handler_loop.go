package executor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

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

	table opTable
	cqes  [256]ring.CQE

	// Receive buffers: one ring of count buffers, recycled in buffer id
	// order, so that ring entry i always holds buffer i mod count and a
	// bundle's buffers are consecutive ids (consecutive memory).
	br       *ring.BufRing
	mode     RecvMode
	bufDone  []bool
	bufNext  uint16
	bufAdds  int     // Adds not yet published with Advance
	incOff   []int32 // incremental mode: bytes of each buffer already used
	bufMem   unsafe.Pointer
	bufSize  int
	bufCount int

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

	tick     Ticker
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
	l.acceptCB = l.onAccept
	l.wakeCB = l.onWake
	l.closeCB = l.onClosed
	if t, ok := s.h.(Ticker); ok {
		l.tick = t
	}
	return l, nil
}

// setup runs on the loop's thread: the ring must be created by the thread
// that will submit to it (SINGLE_ISSUER), and a registered ring fd is
// per-thread.
func (l *hloop) setup() error {
	cfg := l.cfg
	entries := cfg.entries
	base := append([]ring.Option{ring.WithCQSize(8 * entries), ring.WithClamp(), ring.WithSubmitAll()}, cfg.ringOpts...)
	if cfg.keepP {
		base = append(base, ring.WithRawEnter())
	}
	var err error
	for _, extra := range [][]ring.Option{
		{ring.WithDeferTaskrun(), ring.WithTaskrunFlag(), ring.WithNoSQArray()},
		{ring.WithDeferTaskrun(), ring.WithTaskrunFlag()}, // before 6.6
		{ring.WithCoopTaskrun(), ring.WithTaskrunFlag()},  // before 6.1
	} {
		l.r, err = ring.New(entries, append(append([]ring.Option{}, base...), extra...)...)
		if !errors.Is(err, syscall.EINVAL) {
			break
		}
	}
	if err != nil {
		return err
	}
	l.r.RegisterRingFd() // an optimization; without it enter looks the fd up
	if cfg.direct {
		var rl unix.Rlimit
		n := uint32(1 << 16)
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < uint64(n) {
			n = uint32(rl.Cur)
		}
		if err := l.r.RegisterFilesSparse(n); err != nil {
			return fmt.Errorf("direct files: %w", err)
		}
	}
	if cfg.zcThreshold > 0 && l.r.Supports(ring.OpSendZC) {
		l.zc = cfg.zcThreshold
	}
	return l.setupBuffers()
}

// setupBuffers registers the receive buffer ring in the best mode the
// kernel has (or the one asked for), falling back to plain.
func (l *hloop) setupBuffers() error {
	mode := l.cfg.recvMode
	auto := mode == RecvAuto
	if auto {
		mode = RecvIncremental
	}
	size, count := l.cfg.bufSize, l.cfg.bufCount
	var err error
	if mode == RecvIncremental {
		if size == 0 {
			size, count = 64<<10, 64
		}
		l.br, err = l.r.NewBufRing(0, uint32(count), size, ring.Incremental())
		if err != nil { // before 6.12
			mode = RecvPlain
			if auto {
				mode = RecvBundle
			}
		}
	}
	if mode == RecvBundle && !l.r.HasFeature(ring.FeatRecvSendBundle) {
		mode = RecvPlain
	}
	if mode != RecvIncremental {
		if l.cfg.bufSize == 0 {
			size, count = 4<<10, 512
		}
		if l.br, err = l.r.NewBufRing(0, uint32(count), size); err != nil {
			return err
		}
	}
	l.mode = mode
	l.pub.mode.Store(int64(mode))
	l.bufSize, l.bufCount = size, count
	l.bufDone = make([]bool, count)
	l.incOff = make([]int32, count)
	l.bufMem = unsafe.Pointer(&l.br.Buf(0)[0])
	if count > 1 && &l.br.Buf(1)[0] != (*byte)(unsafe.Add(l.bufMem, size)) && mode == RecvBundle {
		l.mode = RecvPlain // buffers not laid out back to back: no bundles
	}
	return nil
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
	if l.notified.Load() {
		l.drainInbox()
	}
	if l.timersActive() {
		l.runTimers(time.Now())
	}
	l.flush()
	if l.stopping && l.table.live == 0 && len(l.conns) == 0 {
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
	l.st.turns++
	if l.cfg.keepP && (err == syscall.ETIME || l.st.turns%64 == 0) {
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

// fail gives up after the ring broke (a bug or a kernel refusal): every
// connection is closed with the error, and the ring's Close cancels what
// is in flight.
func (l *hloop) fail(err error) {
	l.failed = fmt.Errorf("executor: io_uring_enter: %w", err)
	l.cfg.logf("kasync: serve loop %d stops: %v", l.id, l.failed)
	for len(l.conns) > 0 {
		c := l.conns[len(l.conns)-1]
		c.err = l.failed
		l.finishConn(c, false)
	}
}

// teardown releases the loop's resources on its thread.
func (l *hloop) teardown() {
	l.mu.Lock()
	l.stopReq = true
	l.efdClosed = true
	inbox := l.inbox
	l.inbox = nil
	l.mu.Unlock()
	l.publish()
	l.pub.conns.Store(0)
	for _, m := range inbox {
		switch m.kind {
		case hmsgAdopt:
			unix.Close(m.fd)
		case hmsgStats:
			close(m.ch)
		}
	}
	if l.lnfd >= 0 {
		unix.Close(l.lnfd)
	}
	if l.br != nil {
		l.br.Close()
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

// timersActive reports whether anything waits for a time: ticks, lingering
// closes, an accept retry.
func (l *hloop) timersActive() bool {
	return !l.nextTick.IsZero() || len(l.linger) > 0 || l.acceptErr
}

func (l *hloop) waitTimeout() (time.Duration, bool) {
	if !l.timersActive() {
		return 0, false
	}
	now := time.Now()
	var at time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	earliest(l.nextTick)
	if l.acceptErr {
		earliest(l.acceptAt)
	}
	for _, c := range l.linger {
		earliest(c.lingerAt)
	}
	return max(at.Sub(now), 0), true
}

func (l *hloop) runTimers(now time.Time) {
	if !l.nextTick.IsZero() && !now.Before(l.nextTick) {
		l.runTick(now)
	}
	if l.acceptErr && !now.Before(l.acceptAt) {
		l.acceptErr = false
	}
	for i := 0; i < len(l.linger); {
		c := l.linger[i]
		if c.st&hsDone == 0 && now.Before(c.lingerAt) {
			i++
			continue
		}
		if c.st&hsDone == 0 {
			l.closeConn(c, c.err, true) // give up on sending
		}
		c.st &^= hsLinger
		last := len(l.linger) - 1
		l.linger[i] = l.linger[last]
		l.linger[last] = nil
		l.linger = l.linger[:last]
	}
}

func (l *hloop) runTick(now time.Time) {
	l.nextTick = time.Time{}
	defer l.recoverConn(nil)
	if d := l.tick.OnTick(now); d > 0 {
		l.nextTick = now.Add(d)
	}
}

// markDirty schedules c's state to be turned into SQEs this turn.
func (l *hloop) markDirty(c *HConn) {
	if c.st&hsDirty == 0 {
		c.st |= hsDirty
		l.dirty = append(l.dirty, c)
	}
}

// closeConn begins closing c: soft sends the queued output first (within
// the linger time), hard drops it. A soft close can be made hard.
func (l *hloop) closeConn(c *HConn, err error, hard bool) {
	if c.st&hsDone != 0 {
		return
	}
	if c.st&hsClosing == 0 {
		c.st |= hsClosing
		c.err = err
		c.closed.Store(true)
		if !hard && c.pendingOut() > 0 && c.st&hsLinger == 0 {
			c.st |= hsLinger
			c.lingerAt = time.Now().Add(l.cfg.linger)
			l.linger = append(l.linger, c)
		}
	}
	if hard {
		c.st |= hsHard
	}
	l.markDirty(c)
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
	if l.stopping || l.noAccept {
		if l.acceptOp != nil && !l.acceptCancel {
			l.acceptCancel = true
			l.cancelOp(l.acceptOp)
		}
		if l.acceptOp == nil && l.lnfd >= 0 {
			unix.Close(l.lnfd) // connections still in its backlog are refused
			l.lnfd = -1
		}
	}
	if l.stopping {
		if l.wakeOp != nil && !l.wakeCancel {
			l.wakeCancel = true
			l.cancelOp(l.wakeOp)
		}
	} else {
		if l.acceptOp == nil && l.lnfd >= 0 && !l.acceptErr {
			l.armAccept()
		}
		if l.wakeOp == nil {
			s := l.sqe()
			s.PrepRead(l.efd, l.efdBuf[:], 0)
			l.wakeOp = l.newOp(s, l.wakeCB)
		}
	}
	i := 0
	for ; i < len(l.dirty); i++ {
		if !l.sqeSpace(3) {
			break
		}
		c := l.dirty[i]
		c.st &^= hsDirty
		l.reconcile(c)
	}
	if i == len(l.dirty) {
		clear(l.dirty)
		l.dirty = l.dirty[:0]
		return
	}
	// The SQ is full and the kernel is busy: the rest waits for the next turn.
	n := copy(l.dirty, l.dirty[i:])
	clear(l.dirty[n:])
	l.dirty = l.dirty[:n]
}

// reconcile prepares the SQEs c's state calls for (at most three).
func (l *hloop) reconcile(c *HConn) {
	if c.st&hsDone != 0 {
		return
	}
	if c.st&hsClosing != 0 {
		if c.recvOp != nil && c.st&hsRecvCancel == 0 {
			c.st |= hsRecvCancel
			l.cancelOp(c.recvOp)
		}
		if c.st&hsHard != 0 {
			c.out = c.out[:0]
			if c.sendOp != nil && c.st&hsSendCancel == 0 {
				c.st |= hsSendCancel
				l.cancelOp(c.sendOp)
			}
		} else if c.sendOp == nil && c.pendingOut() > 0 {
			l.startSend(c)
		}
		if c.recvOp == nil && c.sendOp == nil && (c.st&hsHard != 0 || c.pendingOut() == 0) {
			l.finishConn(c, true)
		}
		return
	}
	if c.st&(hsRedeliver|hsPaused) == hsRedeliver {
		c.deliver() // input kept while paused; may pause or close c again
		if c.st&hsClosing != 0 {
			l.markDirty(c)
			return
		}
	}
	if c.eofDelivered() { // the FIN came while input was kept
		l.markDirty(c)
		return
	}
	if c.st&hsPaused != 0 {
		if c.recvOp != nil && c.st&hsRecvCancel == 0 {
			c.st |= hsRecvCancel
			l.cancelOp(c.recvOp)
		}
	} else if c.recvOp == nil && c.st&hsNoRecv == 0 {
		s := l.sqe()
		s.PrepRecvMultishot(int(c.fd), 0, l.br.Group())
		if l.mode == RecvBundle {
			s.IoPrio |= ring.RecvSendBundle
		}
		if c.fixed {
			s.Flags |= ring.SQEFixedFile
		}
		c.recvOp = l.newOp(s, c.recvCB)
	}
	if c.sendOp == nil && c.pendingOut() > 0 {
		l.startSend(c)
	}
	c.queued.Store(int64(c.pendingOut()))
}

// startSend sends what is left of the buffer in flight or, once that is
// done, everything Written since: one SEND (or SEND_ZC) per call.
func (l *hloop) startSend(c *HConn) {
	if c.sendOff >= len(c.sending) {
		c.sending, c.out = c.out, c.sending[:0]
		c.sendOff = 0
	}
	buf := c.sending[c.sendOff:]
	s := l.sqe()
	if l.zc > 0 && len(buf) >= l.zc {
		s.PrepSendZC(int(c.fd), buf, unix.MSG_NOSIGNAL, 0)
		l.st.zcSends++
	} else {
		s.PrepSend(int(c.fd), buf, unix.MSG_NOSIGNAL)
	}
	if c.fixed {
		s.Flags |= ring.SQEFixedFile
	}
	c.sendOp = l.newOp(s, c.sendCB)
	l.st.sends++
}

// finishConn ends a closing connection whose operations have all ended:
// OnClose, then the descriptor is closed (through the ring if it works).
func (l *hloop) finishConn(c *HConn, viaRing bool) {
	c.st |= hsDone
	c.closed.Store(true)
	last := len(l.conns) - 1
	l.conns[c.idx] = l.conns[last]
	l.conns[c.idx].idx = c.idx
	l.conns[last] = nil
	l.conns = l.conns[:last]
	c.out, c.sending, c.pend = nil, nil, nil
	c.queued.Store(0)
	l.callClose(c)
	if viaRing {
		s := l.sqe()
		if c.fixed {
			s.PrepCloseDirect(uint32(c.fd))
		} else {
			s.PrepClose(int(c.fd))
		}
		l.newOp(s, l.closeCB)
	} else if !c.fixed && c.g == nil {
		unix.Close(int(c.fd))
	}
}

func (l *hloop) onClosed(int32, uint32) {}

func (l *hloop) armAccept() {
	s := l.sqe()
	if l.cfg.direct {
		s.PrepAcceptMultishot(l.lnfd, 0)
		s.SetFileIndex(ring.FileIndexAlloc)
	} else {
		s.PrepAcceptMultishot(l.lnfd, unix.SOCK_CLOEXEC)
	}
	l.acceptOp = l.newOp(s, l.acceptCB)
}

func (l *hloop) onAccept(res int32, flags uint32) {
	if flags&ring.CQEFMore == 0 {
		l.acceptOp = nil
	}
	if res < 0 {
		if res == -int32(syscall.ECANCELED) || l.stopping {
			return
		}
		// Out of descriptors or memory: retry soon, and say so now and then.
		now := time.Now()
		l.acceptErr, l.acceptAt = true, now.Add(10*time.Millisecond)
		if now.Sub(l.acceptLog) > time.Second {
			l.acceptLog = now
			l.cfg.logf("kasync: serve loop %d: accept: %v", l.id, syscall.Errno(-res))
		}
		return
	}
	if l.stopping || l.noAccept {
		l.closeLater(res)
		return
	}
	if l.s.handoff {
		t := l.s.loops[l.acceptRR%len(l.s.loops)]
		l.acceptRR++
		if t != l {
			if !t.post(hmsg{kind: hmsgAdopt, fd: int(res)}, nil) {
				unix.Close(int(res))
			}
			return
		}
	}
	l.newConn(res, l.cfg.direct)
}

// closeLater closes a descriptor accepted while stopping.
func (l *hloop) closeLater(fd int32) {
	if l.cfg.direct {
		// A registered slot goes with the ring's file table at Close.
		return
	}
	unix.Close(int(fd))
}

func (l *hloop) newConn(fd int32, fixed bool) {
	c := &HConn{l: l, fd: fd, fixed: fixed, idx: len(l.conns)}
	c.recvCB, c.sendCB = c.onRecv, c.onSend
	l.conns = append(l.conns, c)
	l.st.accepted++
	l.markDirty(c) // arms the receive
	l.callOpen(c)
}

func (l *hloop) onWake(res int32, flags uint32) {
	l.wakeOp = nil // re-armed by flush; the inbox is drained at the turn's start
}

// reap dispatches every completion in the CQ, then publishes the receive
// buffers recycled meanwhile.
func (l *hloop) reap() {
	for l.r.CQReady() > 0 {
		n := l.r.PeekBatch(l.cqes[:])
		l.r.CQAdvance(uint32(n))
		l.st.cqes += uint64(n)
		for i := 0; i < n; i++ {
			l.table.dispatch(&l.cqes[i])
		}
	}
	if l.bufAdds > 0 {
		l.br.Advance(l.bufAdds)
		l.bufAdds = 0
	}
}

// received hands the res bytes a receive CQE names to the handler and
// recycles the buffers.
func (l *hloop) received(c *HConn, res int32, flags uint32) {
	if flags&ring.CQEFBuffer == 0 {
		return
	}
	bid := uint16(flags >> 16)
	switch l.mode {
	case RecvIncremental:
		off := l.incOff[bid]
		c.feed(l.br.Buf(bid)[off : off+res])
		if flags&ring.CQEFBufMore != 0 {
			l.incOff[bid] = off + res
		} else {
			l.incOff[bid] = 0
			l.recycle(bid)
		}
	case RecvBundle:
		n := int(res)
		for n > 0 {
			run := min(n, (l.bufCount-int(bid))*l.bufSize) // up to the end of the memory
			c.feed(unsafe.Slice((*byte)(unsafe.Add(l.bufMem, int(bid)*l.bufSize)), run))
			for k := (run + l.bufSize - 1) / l.bufSize; k > 0; k-- {
				l.recycle(bid)
				bid = (bid + 1) & uint16(l.bufCount-1)
			}
			n -= run
		}
	default:
		c.feed(l.br.Buf(bid)[:res])
		l.recycle(bid)
	}
}

// recycle hands buffer bid back, in id order (see bufDone).
func (l *hloop) recycle(bid uint16) {
	l.bufDone[bid] = true
	mask := uint16(l.bufCount - 1)
	for l.bufDone[l.bufNext] {
		l.bufDone[l.bufNext] = false
		l.br.Add(l.bufNext, l.bufAdds)
		l.bufAdds++
		l.bufNext = (l.bufNext + 1) & mask
	}
}

// Handler calls, each contained: a panic closes the connection and is
// reported; the loop goes on.

func (l *hloop) callOpen(c *HConn) {
	defer l.recoverConn(c)
	l.h.OnOpen(c)
}

func (l *hloop) callData(c *HConn, data []byte) (n int) {
	n = -1
	defer l.recoverConn(c)
	n = l.h.OnData(c, data)
	return max(n, 0)
}

func (l *hloop) callClose(c *HConn) {
	defer l.recoverConn(nil)
	l.h.OnClose(c, c.err)
}

func (l *hloop) callDo(c *HConn, f func(*HConn)) {
	defer l.recoverConn(c)
	f(c)
}

// recoverConn is deferred around handler calls.
func (l *hloop) recoverConn(c *HConn) {
	v := recover()
	if v == nil {
		return
	}
	p := &HandlerPanic{Value: v, Stack: debug.Stack()}
	l.st.panics++
	func() {
		defer func() { recover() }() // a panicking reporter is not our loop's end
		l.cfg.onPanic(c, p)
	}()
	if c != nil {
		l.closeConn(c, p, true)
	}
}

// publish copies the loop's counters where Stats reads them.
func (l *hloop) publish() {
	p, s := &l.pub, &l.st
	p.conns.Store(int64(len(l.conns)))
	p.accepted.Store(s.accepted)
	p.turns.Store(s.turns)
	if l.r != nil {
		p.enters.Store(l.r.Stats().Enters)
	}
	p.cqes.Store(s.cqes)
	p.bytesIn.Store(s.bytesIn)
	p.bytesOut.Store(s.bytesOut)
	p.sends.Store(s.sends)
	p.zcSends.Store(s.zcSends)
	p.noBufs.Store(s.noBufs)
	p.pauses.Store(s.pauses)
	p.panics.Store(s.panics)
	p.stale.Store(l.table.stale)
}
