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
// Blocked calls select on the channel done returns, which is closed when
// the deadline passes. Moving a deadline that has not passed keeps the
// channel and moves the timer; one that has passed gets a new channel.
type deadline struct {
	mu      sync.Mutex // serializes set and the timer
	at      time.Time
	timer   *time.Timer                   // made on the first deadline in the future, then reused
	ch      atomic.Pointer[chan struct{}] // made on first use; replaced only under mu
	expired atomic.Bool                   // *ch is closed

	// expire, if set, runs (under mu) each time the deadline passes: the
	// owner cancels its blocked call with it.
	expire func()
}

// done returns a channel closed when the deadline passes.
func (d *deadline) done() <-chan struct{} {
	if p := d.ch.Load(); p != nil {
		return *p
	}
	c := make(chan struct{})
	if d.ch.CompareAndSwap(nil, &c) {
		return c
	}
	return *d.ch.Load()
}

// set moves the deadline to t (zero: no deadline).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done() // make the channel, so that expiring closes one
	d.at = t
	if d.timer != nil {
		d.timer.Stop()
	}
	if !t.IsZero() && time.Until(t) <= 0 {
		d.expireLocked()
		return
	}
	if d.expired.Load() { // it had passed: the new deadline needs a fresh channel
		c := make(chan struct{})
		d.ch.Store(&c)
		d.expired.Store(false)
	}
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
		close(*d.ch.Load())
		d.expired.Store(true)
		if d.expire != nil {
			d.expire()
		}
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
