package executor

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// HConn is a connection on the fast path. Its methods, except AsyncWrite,
// Do and Queued's atomic cousin, are for its loop's thread only: call them
// from the Handler's methods or from a function passed to Do.
type HConn struct {
	l     *hloop
	fd    int32 // descriptor, or registered file index when fixed
	fixed bool
	idx   int    // position in l.conns
	st    uint32 // hs* bits
	err   error  // why it closes

	ctx any

	// Input the handler left unconsumed: pend[pendOff:].
	pend    []byte
	pendOff int

	// Output: out collects Writes; sending is the buffer of the send in
	// flight, sending[sendOff:] what is not yet sent of it. A turn starts
	// at most one send per connection; when sending is done, out becomes it.
	out     []byte
	sending []byte
	sendOff int
	zcRes   int32 // a zero-copy send's result, until its notification

	recvOp, sendOp *op
	recvCB, sendCB func(res int32, flags uint32)

	lingerAt time.Time

	laddr, raddr net.Addr

	g *gconn // Go fallback only

	// Shared with other goroutines (AsyncWrite, Do).
	closed   atomic.Bool  // closing began: AsyncWrite and Do refuse
	queued   atomic.Int64 // output queued, as of the loop's last look
	asyncLen atomic.Int64 // AsyncWrite bytes not yet taken by the loop
}

const (
	hsDirty      uint32 = 1 << iota // in l.dirty
	hsPaused                        // output over the limit: not receiving
	hsClosing                       // closing: no more input to the handler
	hsHard                          // closing without sending queued output
	hsRecvCancel                    // the receive's ASYNC_CANCEL went out
	hsSendCancel                    // the send's ASYNC_CANCEL went out
	hsNoRecv                        // the receive side ended (EOF)
	hsLinger                        // in l.linger
	hsDone                          // OnClose called, descriptor closing
	hsRedeliver                     // input kept while paused awaits OnData
)

// Write queues b (copied) to be sent with the connection's next send, in
// this loop turn. It fails only on a closed connection. Output over the
// server's output limit pauses receiving until it drains.
func (c *HConn) Write(b []byte) (int, error) {
	if c.st&hsClosing != 0 {
		return 0, net.ErrClosed
	}
	c.out = append(c.out, b...)
	c.wrote()
	return len(b), nil
}

// Writev queues the buffers of bs (copied) as one Write.
func (c *HConn) Writev(bs [][]byte) (int, error) {
	if c.st&hsClosing != 0 {
		return 0, net.ErrClosed
	}
	n := 0
	for _, b := range bs {
		c.out = append(c.out, b...)
		n += len(b)
	}
	c.wrote()
	return n, nil
}

func (c *HConn) wrote() {
	l := c.l
	if c.st&hsDirty == 0 {
		c.st |= hsDirty
		l.dirty = append(l.dirty, c)
	}
	if c.st&hsPaused == 0 && c.pendingOut() > l.cfg.outLimit {
		c.st |= hsPaused
		l.st.pauses++
	}
}

// pendingOut is the output queued and not yet sent.
func (c *HConn) pendingOut() int { return len(c.out) + len(c.sending) - c.sendOff }

// Queued returns how many bytes of output are queued and not yet sent.
func (c *HConn) Queued() int { return c.pendingOut() }

// Close closes the connection once its queued output is sent (or after the
// server's linger time). No more OnData follows; OnClose follows with a nil
// error (unless the connection broke meanwhile).
func (c *HConn) Close() error {
	if c.st&hsClosing != 0 {
		return net.ErrClosed
	}
	c.l.closeConn(c, nil, false)
	return nil
}

// Context returns the value set with SetContext.
func (c *HConn) Context() any { return c.ctx }

// SetContext attaches a value of the handler's to the connection.
func (c *HConn) SetContext(v any) { c.ctx = v }

// LocalAddr returns the connection's local address (nil with direct files).
func (c *HConn) LocalAddr() net.Addr {
	if c.g != nil {
		return c.g.nc.LocalAddr()
	}
	if c.laddr == nil && !c.fixed {
		if sa, err := unix.Getsockname(int(c.fd)); err == nil {
			c.laddr = netAddrOf(c.l.s.addr.Network(), sa)
		}
	}
	return c.laddr
}

// RemoteAddr returns the peer's address (nil with direct files).
func (c *HConn) RemoteAddr() net.Addr {
	if c.g != nil {
		return c.g.nc.RemoteAddr()
	}
	if c.raddr == nil && !c.fixed {
		if sa, err := unix.Getpeername(int(c.fd)); err == nil {
			c.raddr = netAddrOf(c.l.s.addr.Network(), sa)
		}
	}
	return c.raddr
}

// AsyncWrite queues b (copied) to be written from the connection's loop; it
// is safe from any goroutine. It fails with net.ErrClosed once the
// connection is closing, and with ErrOutputFull while its queued output is
// over the output limit (try again later).
func (c *HConn) AsyncWrite(b []byte) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	q := c.queued.Load() + c.asyncLen.Load()
	if q > 0 && q+int64(len(b)) > int64(c.l.cfg.outLimit) {
		return ErrOutputFull
	}
	c.asyncLen.Add(int64(len(b)))
	if !c.l.post(hmsg{c: c, kind: hmsgWrite}, b) {
		c.asyncLen.Add(-int64(len(b)))
		return net.ErrClosed
	}
	return nil
}

// Do runs f(c) on the connection's loop thread, where f may use every
// method of c; it is safe from any goroutine. f is skipped if c has begun
// closing by then. Do fails with net.ErrClosed if c is already closing.
func (c *HConn) Do(f func(c *HConn)) error {
	if c.closed.Load() || !c.l.post(hmsg{c: c, f: f, kind: hmsgDo}, nil) {
		return net.ErrClosed
	}
	return nil
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

// onRecv handles the multishot receive's completions.
func (c *HConn) onRecv(res int32, flags uint32) {
	l := c.l
	if res > 0 {
		l.st.bytesIn += uint64(res)
		l.received(c, res, flags)
	}
	if flags&ring.CQEFMore != 0 {
		return
	}
	c.recvOp = nil
	c.st &^= hsRecvCancel
	switch {
	case res == 0:
		c.peerEOF()
	case res == -int32(syscall.ENOBUFS):
		l.st.noBufs++ // re-armed below, once the turn has recycled buffers
	case res == -int32(syscall.ECANCELED):
		// paused or closing
	case res < 0:
		c.st |= hsNoRecv
		l.closeConn(c, syscall.Errno(-res), true)
	}
	l.markDirty(c)
}

// peerEOF handles the peer's FIN (the receive side's clean end): the
// connection closes for EOF, softly, once every byte received before the
// FIN has been offered to the handler. Input kept while paused (hsRedeliver)
// is delivered first, by reconcile once the output has drained, which then
// closes (eofDelivered).
func (c *HConn) peerEOF() {
	c.st |= hsNoRecv
	if c.st&(hsRedeliver|hsClosing) == 0 {
		c.l.closeConn(c, io.EOF, false)
	}
}

// eofDelivered closes c for the peer's FIN once the input kept while paused
// has been delivered; reconcile calls it on a connection not closing. True
// if c began closing.
func (c *HConn) eofDelivered() bool {
	if c.st&(hsNoRecv|hsRedeliver|hsClosing) != hsNoRecv {
		return false
	}
	c.l.closeConn(c, io.EOF, false)
	return true
}

// feed hands received bytes to the handler, after what it left unconsumed.
// While the connection is paused they are only kept, not offered: at most
// what the receives completed before their cancellation carried (or, on
// the Go backend, one read). Kept bytes do not count toward the input limit
// until the handler has been offered them and left them.
func (c *HConn) feed(data []byte) {
	if c.st&hsClosing != 0 {
		return
	}
	if c.pendOff == len(c.pend) && c.st&hsPaused == 0 {
		n := c.l.callData(c, data)
		if n < 0 || c.st&hsClosing != 0 {
			return
		}
		if n < len(data) {
			c.pend = append(c.pend[:0], data[n:]...)
			c.pendOff = 0
			c.checkInput()
		}
		return
	}
	c.pend = append(c.pend, data...)
	if c.st&hsPaused != 0 {
		c.st |= hsRedeliver
		return
	}
	c.deliver()
}

// deliver hands the unconsumed input to the handler again.
func (c *HConn) deliver() {
	c.st &^= hsRedeliver
	n := c.l.callData(c, c.pend[c.pendOff:])
	if n < 0 || c.st&hsClosing != 0 {
		return
	}
	c.pendOff += min(n, len(c.pend)-c.pendOff)
	switch {
	case c.pendOff == len(c.pend):
		c.pendOff = 0
		if cap(c.pend) > shrinkCap {
			c.pend = nil
		} else {
			c.pend = c.pend[:0]
		}
	case c.pendOff > cap(c.pend)/2:
		c.pend = c.pend[:copy(c.pend, c.pend[c.pendOff:])]
		c.pendOff = 0
	}
	c.checkInput()
}

func (c *HConn) checkInput() {
	if len(c.pend)-c.pendOff > c.l.cfg.inLimit {
		c.l.closeConn(c, ErrInputLimit, true)
	}
}

// shrinkCap: buffers that grew past it are dropped once empty, so a burst
// does not pin its memory for the life of the connection.
const shrinkCap = 64 << 10

// onSend handles a send's completions: one, or for zero-copy the result
// (with CQEFMore) and then the notification that the buffer is free.
func (c *HConn) onSend(res int32, flags uint32) {
	if flags&ring.CQEFMore != 0 {
		c.zcRes = res
		return
	}
	if flags&ring.CQEFNotif != 0 {
		res = c.zcRes
	}
	c.sendOp = nil
	c.st &^= hsSendCancel
	l := c.l
	if res < 0 {
		c.out, c.sending, c.sendOff = c.out[:0], c.sending[:0], 0
		l.closeConn(c, syscall.Errno(-res), true)
		l.markDirty(c)
		return
	}
	l.st.bytesOut += uint64(res)
	c.sendOff += int(res)
	if c.sendOff >= len(c.sending) {
		c.sendOff = 0
		if cap(c.sending) > shrinkCap {
			c.sending = nil
		} else {
			c.sending = c.sending[:0]
		}
	}
	if c.st&hsPaused != 0 && c.pendingOut() <= l.cfg.outLimit/2 {
		c.st &^= hsPaused
	}
	l.markDirty(c)
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
