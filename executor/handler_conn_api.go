package executor

import (
	"net"
)

// HConn's methods for handlers (and, AsyncWrite and Do, for any goroutine).
// The transitions they start are in handler_conn.go.

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
		c.laddr = sockName(c.fd, c.l.s.addr.Network(), false)
	}
	return c.laddr
}

// RemoteAddr returns the peer's address (nil with direct files).
func (c *HConn) RemoteAddr() net.Addr {
	if c.g != nil {
		return c.g.nc.RemoteAddr()
	}
	if c.raddr == nil && !c.fixed {
		c.raddr = sockName(c.fd, c.l.s.addr.Network(), true)
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
