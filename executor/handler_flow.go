package executor

import "io"

// Flow control between connections, for handlers that forward (a proxy):
// holding a connection's input, and half-close carried through (OnReadEOF
// after the peer's FIN: readEOF).

// HalfCloser is an optional interface of a Handler: with it, the peer's FIN
// does not close the connection. OnReadEOF is called once, after the last
// OnData, and the connection stays open for output: it closes by itself
// (OnClose with io.EOF) once its own FIN has gone too, that is once the
// output queued before CloseWrite is sent, or earlier with Close. Without
// it, the peer's FIN closes the connection (its queued output is sent
// first).
type HalfCloser interface {
	OnReadEOF(c *HConn)
}

// PauseRead stops receiving on c: no OnData follows until ResumeRead. What
// arrived before the receive stopped is kept and offered after ResumeRead,
// before anything newer, and a FIN after it. It is how a forwarding handler
// stops taking input that another connection cannot send on yet: pause the
// source when the destination's Queued goes over the server's output limit
// (ServeOutputLimit), resume it in the destination's OnDrain. Not the same
// as returning 0 from OnData, which keeps the bytes but goes on receiving
// (up to ServeInputLimit). For the loop's thread only, like Write.
func (c *HConn) PauseRead() {
	if c.st&(hsHeld|hsClosing) == 0 {
		c.st |= hsHeld
		c.l.markDirty(c)
	}
}

// ResumeRead undoes PauseRead: receiving starts again, and input kept
// meanwhile is offered first.
func (c *HConn) ResumeRead() {
	if c.st&hsHeld != 0 {
		c.st &^= hsHeld
		if c.pendOff < len(c.pend) {
			c.st |= hsRedeliver // offered again even if nothing newer comes
		}
		c.l.markDirty(c)
	}
}

// Server returns the server c belongs to: from a handler, the way to Dial
// or Adopt beside c (on c.Loop()).
func (c *HConn) Server() *Server { return c.l.s }

// readEOF follows the peer's FIN, once every byte before it was offered:
// the connection closes for io.EOF, softly, unless its Handler is a
// HalfCloser: then OnReadEOF is told, and the connection stays open for
// output until its own FIN has been sent too (reconcile closes it then).
func (c *HConn) readEOF() {
	hc, _ := c.handler().(HalfCloser)
	if hc == nil {
		c.l.closeConn(c, io.EOF, false)
		return
	}
	c.st |= hsEOFTold
	c.l.callReadEOF(c, hc)
	c.l.markDirty(c)
}
