//go:build linux

package executor

import (
	"sync"

	"github.com/kasync-go/kasync/ring"
)

// multishot is one multishot op that an owner keeps armed on a descriptor
// (Conn's receive, each of a Listener's accepts), queuing what its CQEs
// bring for the owner's blocking call to take:
//
//   - arm starts it (loop.startHeld: it holds a reference on fd), first
//     releasing the one that ended;
//   - each CQE goes to the owner's handle, under the owner's lock; when
//     handle says the owner's queue is full, the op is cancelled from that
//     CQE (loop.cancelFromCQE), once, and the owner arms it again when the
//     queue has drained; a CQE without CQEFMore ends it (armed is false);
//   - release (and stop, which cancels it first) waits for its last CQE and
//     releases it and its reference (loop.endHeld).
//
// armed, capped and held are guarded by the owner's lock mu; cur is
// written and read with the loop locked.
type multishot struct {
	l  *loop
	fd *sysFD
	mu *sync.Mutex // the owner's lock
	w  *waker      // the owner's blocked call, woken after each CQE

	prep   func(sqe *ring.SQE, fd int)
	handle func(res int32, flags uint32) (full bool) // the owner's, under mu
	onCQE  func(res int32, flags uint32)             // m.onCQEFn, bound once

	armed  bool // in flight
	capped bool // its cancellation was asked: the owner's queue is full
	held   *op  // started (in flight or ended) and not yet released
	cur    *op  // being armed or in flight (loop lock)
}

func (m *multishot) init(l *loop, fd *sysFD, mu *sync.Mutex, w *waker, prep func(*ring.SQE, int), handle func(int32, uint32) bool) {
	*m = multishot{l: l, fd: fd, mu: mu, w: w, prep: prep, handle: handle}
	m.onCQE = m.onCQEFn
}

// arm releases the op that ended, if any, and starts a new one.
func (m *multishot) arm() error {
	m.release()
	return m.start()
}

// start starts the op; the caller released the previous one. If the owner
// closed meanwhile (fd is closing), the op is cancelled and ended at once.
func (m *multishot) start() error {
	m.mu.Lock()
	m.armed, m.capped = true, false
	m.mu.Unlock()
	err := m.l.startHeld(m.fd, func(sqe *ring.SQE, o *op) {
		m.prep(sqe, m.fd.fd)
		o.onCQE = m.onCQE
		m.cur = o
	}, func(o *op) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.fd.isClosing() {
			return false
		}
		m.held = o
		return true
	})
	if err != nil {
		m.mu.Lock()
		m.armed = false
		m.mu.Unlock()
		return netError(err)
	}
	return nil
}

// onCQEFn handles each CQE, with the loop locked.
func (m *multishot) onCQEFn(res int32, flags uint32) {
	more := flags&ring.CQEFMore != 0
	m.mu.Lock()
	if m.handle(res, flags) && more && !m.capped {
		m.capped = true
		m.l.cancelFromCQE(m.cur)
	}
	if !more {
		m.armed = false
	}
	m.w.wakeLocked()
	m.mu.Unlock()
}

// release waits for the op's last CQE (it ended, or was cancelled: by a
// cap, or by Close cancelling every op on fd) and releases it.
func (m *multishot) release() {
	if o := m.take(); o != nil {
		m.l.endHeld(m.fd, o)
	}
}

// stop cancels the op and releases it; the next arm starts a new one.
func (m *multishot) stop() {
	if o := m.take(); o != nil {
		m.l.cancel(o)
		m.l.endHeld(m.fd, o)
	}
}

func (m *multishot) take() *op {
	m.mu.Lock()
	o := m.held
	m.held = nil
	m.mu.Unlock()
	return o
}

// waker is an owner's blocked call (Read waiting for data, Accept for a
// connection) sleeping until a CQE, Close or its deadline wakes it to look
// again.
type waker struct {
	waiting bool // the call sleeps on ch; guarded by the owner's lock
	ch      chan struct{}
}

func newWaker() waker { return waker{ch: make(chan struct{}, 1)} }

// sleepLocked marks the call as sleeping; the caller then unlocks and
// calls wait.
func (w *waker) sleepLocked() { w.waiting = true }

func (w *waker) wait() { <-w.ch }

// wakeLocked wakes a sleeping call (with the owner's lock held).
func (w *waker) wakeLocked() {
	if w.waiting {
		w.waiting = false
		w.poke()
	}
}

// poke wakes the call without the owner's lock: Close and the deadline,
// which changed what the call looks at before.
func (w *waker) poke() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}
