package executor

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// HConn's methods for handlers (and, AsyncWrite and Do, for any goroutine).
// The transitions they start are in handler_conn.go.

// Write queues b (copied) to be sent with the connection's next send, in
// this loop turn. It fails only on a closed connection. Output over the
// server's output limit pauses receiving until it drains.
func (c *HConn) Write(b []byte) (int, error) {
	if err := c.writable(); err != nil {
		return 0, err
	}
	c.out = append(c.out, b...)
	c.wrote()
	return len(b), nil
}

// Writev queues the buffers of bs (copied) as one Write.
func (c *HConn) Writev(bs [][]byte) (int, error) {
	if err := c.writable(); err != nil {
		return 0, err
	}
	n := 0
	for _, b := range bs {
		c.out = append(c.out, b...)
		n += len(b)
	}
	c.wrote()
	return n, nil
}

// CloseWrite shuts down the sending side once the output queued so far is
// sent: the peer reads EOF after it, and can still send; OnData goes on
// until the peer's FIN, which closes the connection (OnClose with io.EOF).
// Writes after CloseWrite fail with an error wrapping syscall.EPIPE.
func (c *HConn) CloseWrite() error {
	if c.st&hsClosing != 0 {
		return net.ErrClosed
	}
	c.st |= hsWantFIN
	c.l.markDirty(c)
	return nil
}

// errWriteClosed is what Write says after CloseWrite, as the kernel would.
var errWriteClosed = &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}

// Control calls f with the connection's socket descriptor, for socket
// options (TCP_NODELAY, SO_LINGER, keep-alive, buffer sizes...), as
// syscall.RawConn.Control does; f must not close it or keep it. It fails
// for a connection accepted as a direct file (ServeDirectFiles), which has
// no descriptor in the process, and on a closed one.
func (c *HConn) Control(f func(fd uintptr)) error {
	switch {
	case c.st&hsClosing != 0:
		return net.ErrClosed
	case c.g != nil:
		sc, ok := c.g.nc.(syscall.Conn)
		if !ok {
			return errors.ErrUnsupported
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return err
		}
		return rc.Control(f)
	case c.fixed:
		return errNoDescriptor
	}
	f(uintptr(c.fd))
	return nil
}

var errNoDescriptor = errors.New("executor: a direct-file connection has no descriptor (ServeDirectFiles)")

// Loop returns the index of the loop c runs on (0 to ServeLoops-1), the
// same that OnTick gets.
func (c *HConn) Loop() int { return c.l.id }

// writable says why c takes no more output, if it does not.
func (c *HConn) writable() error {
	switch {
	case c.st&hsClosing != 0:
		return net.ErrClosed
	case c.st&hsWantFIN != 0:
		return errWriteClosed
	}
	return nil
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
		c.refused.Store(true)
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
