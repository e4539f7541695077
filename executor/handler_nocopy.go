package executor

import "syscall"

// Sending from the receive buffer itself, for handlers that forward: the
// bytes OnData was given go out on another connection (or the same one)
// without a copy. The receive buffer is held (bufPool.hold) and goes back
// to the ring when the send ends. That send never waits: on io_uring it is
// a SEND with MSG_DONTWAIT, so what the socket does not take at once (its
// peer is slow, its window full) is copied then into the connection's own
// buffer and sent as usual. A buffer is thus held for one loop turn at
// most, and no slow peer keeps the ring's buffers (which, in the ordered
// receive modes, go back in id order) from coming back.

// noCopyMin: below it, copying costs less than holding the buffer.
const noCopyMin = 2 << 10

// WriteNoCopy queues b to be sent as Write does, but from the receive
// buffer b lies in, without copying it, where it can: b must be bytes that
// the OnData running now, on this connection's loop, was given. It copies
// as Write does where it cannot: output is already queued on c (it goes
// out first), b is short (under 2 KiB) or lies elsewhere, the receive mode
// is RecvBundle, or the server runs on the Go backend.
func (c *HConn) WriteNoCopy(b []byte) (int, error) {
	if err := c.writable(); err != nil {
		return 0, err
	}
	if !c.borrow(b) {
		c.out = append(c.out, b...)
	}
	c.wrote()
	return len(b), nil
}

// borrow makes b, in the buffer being delivered, c's next send.
func (c *HConn) borrow(b []byte) bool {
	l := c.l
	if len(b) < noCopyMin || c.st&(hsSending|hsBorrowed) != 0 || c.pendingOut() > 0 {
		return false
	}
	bid, ok := l.io.hold(b)
	if !ok {
		return false
	}
	c.spare, c.sending, c.sendOff, c.lent = c.sending[:0], b, 0, bid
	c.st |= hsBorrowed
	l.st[ctrNoCopySends]++
	return true
}

// unborrow ends a borrowed send (sendDone, with sendOff advanced by what
// it sent): the rest is copied into c's own buffer, and the receive
// buffer goes back. EAGAIN (the socket took nothing) is no error here.
func (c *HConn) unborrow(err error) error {
	if err == syscall.EAGAIN {
		err = nil
	}
	rest := c.sending[c.sendOff:]
	if err != nil {
		rest = nil
	}
	c.sending, c.spare, c.sendOff = append(c.spare, rest...), nil, 0
	c.st &^= hsBorrowed
	c.l.io.release(c.lent)
	return err
}
