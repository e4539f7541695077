package executor

import (
	"sync"
	"sync/atomic"
	"time"
)

// deadline is one direction's deadline of a connection, with net.Conn's
// semantics: it applies to calls already blocked, a time in the past makes
// them (and later calls) fail at once, and the zero time removes it.
//
// A call looks at passed before it blocks; a blocked call is cut short by
// expire, which the owner sets to cancel the op in its opSlot (or to wake
// a call waiting on a queue, as Accept and Read do). No call selects on a
// channel.
type deadline struct {
	mu      sync.Mutex // serializes set and the timer
	at      time.Time
	timer   *time.Timer // made on the first deadline in the future, then reused
	expired atomic.Bool // the deadline has passed

	// expire runs (under mu) each time the deadline passes: the owner
	// cancels or wakes its blocked call with it.
	expire func()
}

// set moves the deadline to t (zero: no deadline).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at = t
	if d.timer != nil {
		d.timer.Stop()
	}
	if !t.IsZero() && time.Until(t) <= 0 {
		d.expireLocked()
		return
	}
	d.expired.Store(false)
	if t.IsZero() {
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(time.Until(t), d.fire)
	} else {
		d.timer.Reset(time.Until(t))
	}
}

// fire runs on the timer. A timer that raced with set moving the deadline
// later finds it has not passed, and leaves it to the reset timer.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && time.Until(d.at) <= 0 {
		d.expireLocked()
	}
}

func (d *deadline) expireLocked() {
	if !d.expired.Load() {
		d.expired.Store(true)
		d.expire()
	}
}

// passed reports whether the deadline has passed.
func (d *deadline) passed() bool { return d.expired.Load() }

// stop releases the timer (on Close).
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}
