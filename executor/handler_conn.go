package executor

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// The connection state machine, one for both backends. A connection's
// state is its hs* bits and its buffers; everything that changes them is here:
//
//   - open: addConn (the receive is armed by the first reconcile);
//   - input: recvd feeds received bytes to OnData (feed, deliver), keeping
//     what the handler leaves; checkInput closes on too much of it;
//   - output: Write and Writev queue (wrote), which pauses receiving above
//     the output limit; startSend and sendDone move it out, and sendDone
//     lifts the pause at half the limit;
//   - receive end: recvEnded (EOF: peerEOF, eofDelivered);
//   - close: closeConn (soft, or hard), then reconcile waits for the I/O in
//     flight to end, and finishConn calls OnClose and closes the descriptor.
//
// reconcile turns the state into I/O through connIO, the one seam between
// the state machine and a backend: SQEs on the loop's ring (uringIO,
// handler_uring_io.go), or a reader and a writer goroutine per connection
// on the Go backend (goIO, handler_gobackend.go). Every start's end comes
// back to the same completion handlers: recvd and recvEnded for the
// receive, sendDone for the send.

// connIO is the kernel I/O a connection's state machine asks for. At most
// one receive and one send of a connection are in flight (hsRecving,
// hsSending), and each ends with its completion handler, stopped or not.
type connIO interface {
	// room reports whether one reconcile's I/O fits in this turn (the
	// ring's SQ has room for three SQEs); if not, the rest waits.
	room() bool
	// startRecv arms the receive: its bytes go to recvd, its end to
	// recvEnded.
	startRecv(c *HConn)
	// stopRecv asks the receive in flight to end; recvEnded follows.
	stopRecv(c *HConn)
	// startSend sends buf (which stays c's until sendDone).
	startSend(c *HConn, buf []byte)
	// stopSend asks the send in flight to end; sendDone follows.
	stopSend(c *HConn)
	// shutdownWrite sends the FIN (SHUT_WR) once c's output is all sent;
	// receiving goes on.
	shutdownWrite(c *HConn)
	// closeFD releases a finished connection's descriptor.
	closeFD(c *HConn)
	// hold keeps the receive buffer b lies in (bytes being delivered now)
	// from going back until release, for a send from it (WriteNoCopy);
	// false if b is in none, or the backend lends none.
	hold(b []byte) (bid uint16, ok bool)
	release(bid uint16)
}

// HConn is a connection on the fast path. Its methods, except AsyncWrite,
// Do and Queued's atomic cousin, are for its loop's thread only: call them
// from the Handler's methods or from a function passed to Do.
type HConn struct {
	l     *hloop
	fd    int32 // descriptor, or registered file index when fixed
	fixed bool
	idx   int          // position in l.conns
	st    uint32       // hs* bits
	tmo   connTimeouts // timeouts (handler_deadlines.go), in l's and st's cache line for the stamps
	err   error        // why it closes

	ctx any

	h    Handler // its own Handler (Dial, Adopt), else the server's
	dial *hdial  // a Dial not yet connected (handler_dial.go)

	// Input the handler left unconsumed: pend[pendOff:].
	pend    []byte
	pendOff int

	// Output: out collects Writes; sending is the buffer of the send in
	// flight, sending[sendOff:] what is not yet sent of it. A turn starts
	// at most one send per connection; when sending is done, out becomes it.
	out     []byte
	sending []byte
	sendOff int
	spare   []byte // hsBorrowed: c's own send buffer, while sending is a receive buffer's bytes
	lent    uint16 // hsBorrowed: that receive buffer's id (handler_nocopy.go)

	lingerAt time.Time

	laddr, raddr net.Addr

	// io_uring: the receive and send ops in flight, and their callbacks.
	recvOp, sendOp *op
	recvCB, sendCB func(res int32, flags uint32)
	zcRes          int32 // a zero-copy send's result, until its notification

	g *gconn // Go backend only

	// Shared with other goroutines (AsyncWrite, Do).
	closed   atomic.Bool  // closing began: AsyncWrite and Do refuse
	queued   atomic.Int64 // output queued, as of the loop's last look
	refused  atomic.Bool  // AsyncWrite said ErrOutputFull: OnDrain is due
	asyncLen atomic.Int64 // AsyncWrite bytes not yet taken by the loop
}

// A connection's state bits.
const (
	hsDirty      uint32 = 1 << iota // in l.dirty: reconcile this turn
	hsRecving                       // a receive is in flight
	hsSending                       // a send is in flight
	hsRecvCancel                    // the receive was asked to stop
	hsSendCancel                    // the send was asked to stop
	hsPaused                        // output over the limit: not receiving
	hsRedeliver                     // input kept while paused awaits OnData
	hsNoRecv                        // the receive side ended (EOF, error)
	hsClosing                       // closing: no more input to the handler
	hsHard                          // closing without sending queued output
	hsLinger                        // in l.linger
	hsDone                          // OnClose called, descriptor closing
	hsWantFIN                       // CloseWrite: send the FIN once the output is sent
	hsSentFIN                       // the FIN went out: no more output
	hsOverLimit                     // output went over the limit (or AsyncWrite was refused): OnDrain is due
	hsHeld                          // PauseRead: not receiving until ResumeRead
	hsEOFTold                       // HalfCloser: OnReadEOF was called; close once the FIN is sent
	hsThrottled                     // input was held (PauseRead, the output limit): receive one buffer at a time
	hsBorrowed                      // sending is in a receive buffer (WriteNoCopy), held until its send ends

	hsNoInput = hsPaused | hsHeld // not receiving: input is kept, not offered
)

// addConn opens c on its loop: the first reconcile arms its receive.
func (l *hloop) addConn(c *HConn) {
	c.l, c.idx = l, len(l.conns)
	l.conns = append(l.conns, c)
	l.st[ctrAccepted]++
	l.markDirty(c)
	l.openTimeouts(c)
	l.callOpen(c)
}

// markDirty schedules c's state to be turned into I/O this turn.
func (l *hloop) markDirty(c *HConn) {
	if c.st&hsDirty == 0 {
		c.st |= hsDirty
		l.dirty = append(l.dirty, c)
	}
}

// wrote follows a Write: c is reconciled this turn, and pauses receiving
// if its output went over the limit.
func (c *HConn) wrote() {
	l := c.l
	l.markDirty(c)
	if c.st&hsPaused == 0 && c.pendingOut() > l.cfg.outLimit {
		c.st |= hsPaused | hsOverLimit
		l.st[ctrPauses]++
	}
}

// pendingOut is the output queued and not yet sent.
func (c *HConn) pendingOut() int { return len(c.out) + len(c.sending) - c.sendOff }

// closeConn begins closing c: soft sends the queued output first (within
// the linger time), hard drops it. A soft close can be made hard.
func (l *hloop) closeConn(c *HConn, err error, hard bool) {
	if c.st&hsDone != 0 {
		return
	}
	if c.st&hsClosing == 0 {
		c.st |= hsClosing
		c.err = err
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			l.st[ctrResets]++
		}
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

// reconcileDirty reconciles the connections whose state changed, as far as
// the backend has room this turn; the rest wait for the next turn.
func (l *hloop) reconcileDirty() {
	i := 0
	for ; i < len(l.dirty); i++ {
		if !l.io.room() {
			break
		}
		c := l.dirty[i]
		c.st &^= hsDirty
		l.reconcile(c)
	}
	n := copy(l.dirty, l.dirty[i:])
	clear(l.dirty[n:])
	l.dirty = l.dirty[:n]
}

// reconcile starts and stops the I/O c's state calls for (at most three
// SQEs on io_uring), and finishes c once it is closed and its I/O is over.
func (l *hloop) reconcile(c *HConn) {
	if c.st&hsDone != 0 {
		return
	}
	if c.st&hsClosing != 0 {
		l.stopRecv(c)
		if c.st&hsHard != 0 {
			c.out = c.out[:0]
			if c.st&(hsSending|hsSendCancel) == hsSending {
				c.st |= hsSendCancel
				l.io.stopSend(c)
			}
		} else if c.st&hsSending == 0 && c.pendingOut() > 0 {
			l.startSend(c)
		}
		if c.st&(hsRecving|hsSending) == 0 && (c.st&hsHard != 0 || c.pendingOut() == 0) {
			l.finishConn(c)
		}
		return
	}
	if c.st&hsRedeliver != 0 && c.st&hsNoInput == 0 {
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
	if c.st&hsNoInput != 0 {
		c.st |= hsThrottled
		l.stopRecv(c)
	} else if c.st&(hsRecving|hsNoRecv) == 0 {
		c.st |= hsRecving
		c.stampRecv(false)
		l.io.startRecv(c)
	}
	if c.st&hsSending == 0 && c.pendingOut() > 0 {
		l.startSend(c)
	}
	if c.st&(hsWantFIN|hsSentFIN|hsSending) == hsWantFIN && c.pendingOut() == 0 {
		c.st |= hsSentFIN
		l.io.shutdownWrite(c)
	}
	if c.st&(hsEOFTold|hsSentFIN) == hsEOFTold|hsSentFIN { // both ways done
		l.closeConn(c, io.EOF, false)
	}
	c.queued.Store(int64(c.pendingOut()))
}

// stopRecv asks c's receive in flight, if any, to end (once).
func (l *hloop) stopRecv(c *HConn) {
	if c.st&(hsRecving|hsRecvCancel) == hsRecving {
		c.st |= hsRecvCancel
		l.io.stopRecv(c)
	}
}

// startSend sends what is left of the buffer in flight or, once that is
// done, everything Written since: one send per call.
func (l *hloop) startSend(c *HConn) {
	if c.sendOff >= len(c.sending) {
		c.sending, c.out = c.out, c.sending[:0]
		c.sendOff = 0
	}
	c.st |= hsSending
	c.stampSendStart()
	l.st[ctrSends]++
	l.io.startSend(c, c.sending[c.sendOff:])
}

// finishConn ends a closing connection whose I/O has all ended: OnClose,
// then the descriptor is closed.
func (l *hloop) finishConn(c *HConn) {
	if c.st&hsBorrowed != 0 { // closed hard before its send started
		c.unborrow(net.ErrClosed)
	}
	c.st |= hsDone
	c.closed.Store(true)
	l.dlRemove(c)
	last := len(l.conns) - 1
	l.conns[c.idx] = l.conns[last]
	l.conns[c.idx].idx = c.idx
	l.conns[last] = nil
	l.conns = l.conns[:last]
	c.out, c.sending, c.pend = nil, nil, nil
	c.queued.Store(0)
	l.callClose(c)
	l.io.closeFD(c)
}

// recvd hands bytes the receive brought to the handler.
func (c *HConn) recvd(data []byte) {
	c.l.st[ctrBytesIn] += uint64(len(data))
	c.stampRecv(true)
	c.feed(data)
}

// recvEnded: c's receive is no longer in flight. err says why: nil (it
// may be armed again: a single read done, no buffer free), errCancelled
// (stopRecv asked), io.EOF (the peer's FIN), or what broke it.
func (c *HConn) recvEnded(err error) {
	c.st &^= hsRecving | hsRecvCancel
	switch err {
	case nil, errCancelled:
	case io.EOF:
		c.peerEOF()
	default:
		c.st |= hsNoRecv
		c.l.closeConn(c, err, true)
	}
	c.l.markDirty(c)
}

// sendDone: c's send is no longer in flight, n bytes of it sent. With err
// the connection is broken: its output is dropped and it closes hard.
func (c *HConn) sendDone(n int, err error) {
	c.st &^= hsSending | hsSendCancel
	l := c.l
	l.st[ctrBytesOut] += uint64(n)
	c.sendOff += n
	if c.st&hsBorrowed != 0 {
		err = c.unborrow(err) // handler_nocopy.go
	}
	if err != nil {
		c.out, c.sending, c.sendOff = c.out[:0], c.sending[:0], 0
		l.closeConn(c, err, true)
		return
	}
	if n > 0 {
		c.stampSent()
	}
	if c.sendOff >= len(c.sending) {
		c.sendOff = 0
		c.sending = emptied(c.sending)
	}
	if c.pendingOut() <= l.cfg.outLimit/2 {
		c.st &^= hsPaused
		if c.st&hsOverLimit != 0 || c.refused.Swap(false) {
			c.st &^= hsOverLimit
			l.callDrain(c)
		}
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
	if c.st&hsClosing == 0 && !c.inputKept() {
		c.readEOF()
	}
}

// inputKept reports input that is still to be offered before the FIN:
// kept while paused (hsRedeliver), or left by the handler while its input
// is held (PauseRead, the output limit), which it gets when input resumes.
func (c *HConn) inputKept() bool {
	return c.st&hsRedeliver != 0 || (c.st&hsNoInput != 0 && c.pendOff < len(c.pend))
}

// eofDelivered closes c for the peer's FIN once the input kept while paused
// has been delivered; reconcile calls it on a connection not closing. True
// if c began closing.
func (c *HConn) eofDelivered() bool {
	if c.st&(hsNoRecv|hsClosing|hsEOFTold) != hsNoRecv || c.inputKept() {
		return false
	}
	c.readEOF()
	return true
}

// feed hands received bytes to the handler, after what it left unconsumed.
// While input is held they are only kept, not offered: what came before the
// receive stopped (one buffer or read once c is hsThrottled). Kept bytes
// count toward the input limit only once offered and left.
func (c *HConn) feed(data []byte) {
	if c.st&hsClosing != 0 {
		return
	}
	if c.pendOff == len(c.pend) && c.st&hsNoInput == 0 {
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
	if c.st&hsNoInput != 0 {
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
		c.pend = emptied(c.pend)
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

// emptied is b emptied for reuse, or nil if it grew past shrinkCap, so
// that a burst does not pin its memory for the life of the connection.
func emptied(b []byte) []byte {
	if cap(b) > shrinkCap {
		return nil
	}
	return b[:0]
}

const shrinkCap = 64 << 10
