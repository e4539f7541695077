package executor

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A Server loop's state and its inbox, on either backend.

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
	io  connIO // the connections' I/O: uringIO, or goIO on the Go backend

	hring // the io_uring loop's own state (handler_loop.go; Linux)

	lnfd      int       // listening socket, -1 if none (Unix: loop 0 accepts for all)
	acceptErr bool      // accepting failed: retry at acceptAt
	acceptAt  time.Time // when to retry
	efd       int       // eventfd other goroutines write to wake the loop

	conns   []*HConn
	dirty   []*HConn
	linger  []*HConn
	dialing []*HConn // Dials connecting on the ring (handler_dial_linux.go)

	stopping bool
	idle     bool  // ServeKeepP: a wait ran out with nothing; sleep (turn)
	noAccept bool  // Shutdown: accept no more connections
	failed   error // the ring broke: give up on the conns

	tick     Ticker           // the Handler's optional interfaces (bindHandler)
	drainer  Drainer          //
	notifier ShutdownNotifier //
	nextTick time.Time
	dl       deadlines // the connections' timeouts (handler_deadlines.go)

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
	hmsgDial // c's Dial: its result, or its CONNECT to start (handler_dial.go)
)

// beginTurn starts a turn of either backend's loop: the work other
// goroutines posted, then the timers that are due.
func (l *hloop) beginTurn() {
	if l.notified.Load() {
		l.drainInbox()
	}
	if l.timersActive() {
		l.runTimers(monoTime(l.turnNow())) // the turn's clock: one read a turn
	}
}

// over reports whether a stopping loop is done: no connection left and
// nothing in flight.
func (l *hloop) over() bool {
	return l.stopping && l.inFlight() == 0 && len(l.conns) == 0
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
		case m.kind == hmsgDial:
			l.dialDropped(m.c)
		case m.kind == hmsgAdopt && m.nc != nil:
			m.nc.Close()
		case m.kind == hmsgAdopt:
			closeFD(m.fd)
		}
	}
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
		wakeFD(l.efd)
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
				l.gadopt(m.nc, c)
			case l.stopping || stop:
				closeFD(m.fd)
			case c != nil: // Server.Adopt
				l.openConn(c, int32(m.fd))
			default:
				l.newConn(int32(m.fd), false)
			}
		case hmsgDial:
			l.dialMsg(c, stop)
		case hmsgStats:
			l.publish()
			close(m.ch)
		case hmsgNoAccept:
			l.noAccept = true
			for i := 0; i < len(l.conns); i++ {
				if c := l.conns[i]; c.st&hsClosing == 0 {
					l.callShutdown(c)
				}
			}
		}
	}
	clear(msgs)
	l.spare, l.spareData = msgs[:0], data[:0]
	if stop && !l.stopping {
		l.stopping = true
		l.stopDials()
		for _, c := range l.conns {
			l.closeConn(c, ErrServerClosed, true)
		}
	}
}
