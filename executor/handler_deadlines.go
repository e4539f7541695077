package executor

import (
	"net"
	"os"
	"time"
)

// Per-connection read, write and idle timeouts on the fast path, on either
// backend: one min-heap per loop (deadlines), keyed by each connection's
// earliest possible timeout, whose first entry sets the loop's one wait
// timeout (handler_timers.go). A connection has at most one entry.
//
// Traffic does not touch the heap: it only stamps the connection's clocks
// (readAt, writeAt, idleAt) with the turn's time, read once per turn at
// most (turnNow). An entry's key is a lower bound of the connection's next
// timeout; when it comes due, the lazy check (expire) works out the real
// deadlines from the clocks and either closes the connection or moves the
// entry to the remaining time. A busy connection so costs one heap move per
// timeout period, whatever its traffic, and a turn with nothing due costs
// one look at the heap's first entry, whatever the number of entries.

// TimeoutError is the OnClose error of a connection closed by one of its
// timeouts: ErrReadTimeout, ErrWriteTimeout or ErrIdleTimeout. It is a
// net.Error whose Timeout is true, and errors.Is(err,
// os.ErrDeadlineExceeded) holds for it.
type TimeoutError struct {
	Kind string // "read", "write" or "idle"
}

func (e *TimeoutError) Error() string   { return "executor: connection " + e.Kind + " timeout" }
func (e *TimeoutError) Timeout() bool   { return true }
func (e *TimeoutError) Temporary() bool { return true }
func (e *TimeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }

var _ net.Error = (*TimeoutError)(nil)

var (
	// ErrReadTimeout closes a connection that received nothing for its
	// read timeout (ServeReadTimeout, HConn.SetReadTimeout).
	ErrReadTimeout = &TimeoutError{Kind: "read"}
	// ErrWriteTimeout closes a connection whose queued output made no
	// progress for its write timeout (ServeWriteTimeout,
	// HConn.SetWriteTimeout).
	ErrWriteTimeout = &TimeoutError{Kind: "write"}
	// ErrIdleTimeout closes a connection that neither received nor sent
	// for its idle timeout (ServeIdleTimeout, HConn.SetIdleTimeout).
	ErrIdleTimeout = &TimeoutError{Kind: "idle"}
)

// ServeReadTimeout sets every connection's read timeout (default 0, off):
// a connection is closed hard (its queued output dropped) with
// ErrReadTimeout once it has received no byte for d while receiving: since
// its last byte, since it opened, or since receiving resumed after a pause
// for the output limit, whichever is last. While paused for the output limit,
// or after the peer's FIN (CloseWrite), the read timeout does not run.
// HConn.SetReadTimeout changes it per connection. Negative is refused.
func ServeReadTimeout(d time.Duration) ServeOption { return func(c *serveConfig) { c.readTO = d } }

// ServeWriteTimeout sets every connection's write timeout (default 0, off):
// a connection is closed hard with ErrWriteTimeout once a send of its
// queued output has been in flight for d without completing, that is once
// its output made no progress for d (a peer that stopped reading). A
// connection with nothing to send never hits it. On the Go backend one send
// is one net.Conn Write of everything queued, which ends only when all of
// it is written. HConn.SetWriteTimeout changes it per connection. Negative
// is refused.
func ServeWriteTimeout(d time.Duration) ServeOption { return func(c *serveConfig) { c.writeTO = d } }

// ServeIdleTimeout sets every connection's idle timeout (default 0, off): a
// connection is closed hard with ErrIdleTimeout once it has neither
// received a byte nor completed a send for d (since it opened, or its last
// traffic either way). HConn.SetIdleTimeout changes it per connection.
// Negative is refused.
func ServeIdleTimeout(d time.Duration) ServeOption { return func(c *serveConfig) { c.idleTO = d } }

// SetReadTimeout sets c's read timeout (see ServeReadTimeout), its clock
// starting now; d <= 0 turns it off. It fails with net.ErrClosed once c is
// closing: timeouts do not apply to a closing connection (its linger time
// does).
func (c *HConn) SetReadTimeout(d time.Duration) error {
	return c.setTimeout(&c.tmo.readTO, &c.tmo.readAt, d)
}

// SetWriteTimeout sets c's write timeout (see ServeWriteTimeout), its clock
// starting now for a send in flight; d <= 0 turns it off. It fails with
// net.ErrClosed once c is closing.
func (c *HConn) SetWriteTimeout(d time.Duration) error {
	return c.setTimeout(&c.tmo.writeTO, &c.tmo.writeAt, d)
}

// SetIdleTimeout sets c's idle timeout (see ServeIdleTimeout), its clock
// starting now; d <= 0 turns it off. It fails with net.ErrClosed once c is
// closing.
func (c *HConn) SetIdleTimeout(d time.Duration) error {
	return c.setTimeout(&c.tmo.idleTO, &c.tmo.idleAt, d)
}

// connTimeouts is a connection's part of its loop's deadlines.
// The stamps' fields come first, together: traffic touches only them.
type connTimeouts struct {
	hpos                    int32         // 1 + index in the loop's heap, 0 if not there
	readAt, writeAt, idleAt int64         // each clock's start (monoNow)
	readTO, writeTO, idleTO time.Duration // 0: off
}

// deadlines is a loop's timer structure: a binary min-heap of connections
// by their earliest possible timeout, and the turn's clock.
type deadlines struct {
	heap      []dlEntry
	clock     int64  // monoNow as of clockTurn
	clockTurn uint64 // the ctrTurns clock was read at
}

type dlEntry struct {
	at int64 // lower bound of c's next timeout (monoNow)
	c  *HConn
}

// monoEpoch is the origin of monoNow.
var monoEpoch = time.Now()

// monoNow is the monotonic time in nanoseconds since monoEpoch, at least 1.
func monoNow() int64 { return int64(time.Since(monoEpoch)) + 1 }

// monoTime turns a monoNow value back into a time.Time.
func monoTime(t int64) time.Time { return monoEpoch.Add(time.Duration(t - 1)) }

// turnNow is the loop's time for stamping traffic: read once per turn (the
// loop's wait, where time passes, ends each turn), so that a turn's
// messages cost one clock read between them.
func (l *hloop) turnNow() int64 {
	if l.dl.clockTurn != l.st[ctrTurns] || l.dl.clock == 0 {
		l.dl.clock = monoNow()
		l.dl.clockTurn = l.st[ctrTurns]
	}
	return l.dl.clock
}

// Traffic stamps, for the state machine: cheap, and nothing for a
// connection without timeouts.

// stampRecv: bytes arrived, or receiving (re)started.
func (c *HConn) stampRecv(bytes bool) {
	if c.tmo.hpos != 0 {
		now := c.l.turnNow()
		c.tmo.readAt = now
		if bytes {
			c.tmo.idleAt = now
		}
	}
}

// stampSendStart: a send went out.
func (c *HConn) stampSendStart() {
	if c.tmo.hpos != 0 {
		c.tmo.writeAt = c.l.turnNow()
	}
}

// stampSent: a send completed with n > 0 bytes.
func (c *HConn) stampSent() {
	if c.tmo.hpos != 0 {
		c.tmo.idleAt = c.l.turnNow()
	}
}

// openTimeouts gives a new connection the server's timeouts.
func (l *hloop) openTimeouts(c *HConn) {
	cfg := l.cfg
	if cfg.readTO <= 0 && cfg.writeTO <= 0 && cfg.idleTO <= 0 {
		return
	}
	now := l.turnNow()
	c.tmo.readTO, c.tmo.writeTO, c.tmo.idleTO = cfg.readTO, cfg.writeTO, cfg.idleTO
	c.tmo.readAt, c.tmo.writeAt, c.tmo.idleAt = now, now, now
	l.dlArm(c, now)
}

func (c *HConn) setTimeout(to *time.Duration, at *int64, d time.Duration) error {
	if c.st&hsClosing != 0 {
		return net.ErrClosed
	}
	l := c.l
	now := l.turnNow()
	*to, *at = max(d, 0), now
	if c.tmo.hpos != 0 {
		// Keep the other clocks: they are stamped only while in the heap.
		if next, ok := c.nextTimeout(now); ok && next < l.dl.heap[c.tmo.hpos-1].at {
			l.dlFix(int(c.tmo.hpos-1), next)
		}
		return nil
	}
	c.tmo.readAt, c.tmo.writeAt, c.tmo.idleAt = now, now, now
	l.dlArm(c, now)
	return nil
}

// nextTimeout is a lower bound of c's next timeout, as of now: for each
// timeout that is on, when its clock runs out, a clock that is not running
// (no send in flight, receiving paused) counting from now, the earliest it
// could start. False if every timeout is off.
func (c *HConn) nextTimeout(now int64) (int64, bool) {
	next, ok := int64(0), false
	earliest := func(at int64, to time.Duration) {
		if to > 0 && (!ok || at+int64(to) < next) {
			next, ok = at+int64(to), true
		}
	}
	if c.st&(hsNoInput|hsNoRecv) == 0 {
		earliest(c.tmo.readAt, c.tmo.readTO)
	} else {
		earliest(now, c.tmo.readTO)
	}
	if c.st&hsSending != 0 {
		earliest(c.tmo.writeAt, c.tmo.writeTO)
	} else {
		earliest(now, c.tmo.writeTO)
	}
	earliest(c.tmo.idleAt, c.tmo.idleTO)
	return next, ok
}

// expired is the timeout c has run out of as of now, if any.
func (c *HConn) expired(now int64) error {
	switch {
	case c.tmo.idleTO > 0 && now-c.tmo.idleAt >= int64(c.tmo.idleTO):
		return ErrIdleTimeout
	case c.tmo.readTO > 0 && c.st&(hsNoInput|hsNoRecv) == 0 && now-c.tmo.readAt >= int64(c.tmo.readTO):
		return ErrReadTimeout
	case c.tmo.writeTO > 0 && c.st&hsSending != 0 && now-c.tmo.writeAt >= int64(c.tmo.writeTO):
		return ErrWriteTimeout
	}
	return nil
}

// dlArm puts c in the heap at its next timeout, if it has one on.
func (l *hloop) dlArm(c *HConn, now int64) {
	next, ok := c.nextTimeout(now)
	if !ok {
		return
	}
	h := &l.dl
	h.heap = append(h.heap, dlEntry{at: next, c: c})
	i := len(h.heap) - 1
	c.tmo.hpos = int32(i + 1)
	l.dlUp(i)
}

// dlRemove takes c out of the heap, if it is there (finishConn).
func (l *hloop) dlRemove(c *HConn) {
	if c.tmo.hpos == 0 {
		return
	}
	h := &l.dl
	i, last := int(c.tmo.hpos-1), len(h.heap)-1
	c.tmo.hpos = 0
	if i != last {
		h.heap[i] = h.heap[last]
		h.heap[i].c.tmo.hpos = int32(i + 1)
	}
	h.heap[last] = dlEntry{}
	h.heap = h.heap[:last]
	if i != last {
		l.dlDown(i)
		l.dlUp(i)
	}
}

// dlFix moves entry i to key at.
func (l *hloop) dlFix(i int, at int64) {
	old := l.dl.heap[i].at
	l.dl.heap[i].at = at
	if at < old {
		l.dlUp(i)
	} else {
		l.dlDown(i)
	}
}

func (l *hloop) dlSwap(i, j int) {
	h := l.dl.heap
	h[i], h[j] = h[j], h[i]
	h[i].c.tmo.hpos = int32(i + 1)
	h[j].c.tmo.hpos = int32(j + 1)
}

func (l *hloop) dlUp(i int) {
	h := l.dl.heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p].at <= h[i].at {
			return
		}
		l.dlSwap(i, p)
		i = p
	}
}

func (l *hloop) dlDown(i int) {
	h := l.dl.heap
	n := len(h)
	for {
		m, a, b := i, 2*i+1, 2*i+2
		if a < n && h[a].at < h[m].at {
			m = a
		}
		if b < n && h[b].at < h[m].at {
			m = b
		}
		if m == i {
			return
		}
		l.dlSwap(i, m)
		i = m
	}
}

// dlNext is the heap's earliest key; false if it is empty.
func (l *hloop) dlNext() (time.Time, bool) {
	if len(l.dl.heap) == 0 {
		return time.Time{}, false
	}
	return monoTime(l.dl.heap[0].at), true
}

// runDeadlines handles the entries due by now: a connection whose timeout
// ran out is closed hard with its TimeoutError; the others move to their
// next timeout.
func (l *hloop) runDeadlines(now time.Time) {
	mnow := int64(now.Sub(monoEpoch)) + 1
	for len(l.dl.heap) > 0 && l.dl.heap[0].at <= mnow {
		c := l.dl.heap[0].c
		if c.st&hsClosing != 0 {
			l.dlRemove(c) // its linger time rules now
			continue
		}
		if err := c.expired(mnow); err != nil {
			l.dlRemove(c)
			l.st[ctrTimeouts]++
			l.closeConn(c, err, true)
			continue
		}
		next, ok := c.nextTimeout(mnow)
		if !ok {
			l.dlRemove(c)
			continue
		}
		l.dlFix(0, next)
	}
}
