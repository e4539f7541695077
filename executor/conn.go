//go:build linux

package executor

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// Conn is a stream connection (TCP or Unix) on io_uring, as Listener.Accept
// and Executor.Dial return it: a net.Conn, plus CloseWrite, CloseRead,
// ReadFrom and WriteTo. It is safe for one reader, one writer and a
// concurrent Close, and for any other concurrent use net.Conn allows.
//
// Reading uses one multishot receive into the loop's provided buffers, armed
// by the first Read: data that has arrived is queued, and Read copies it out
// without a system call. A connection holding more than a few buffers unread
// stops receiving until Read catches up. A Write of up to 64 KiB is copied
// and returns once its SEND is queued with everything else the loop submits
// (write-behind, conn_send.go); the next Write waits for that SEND. So, as
// with net's socket buffer, an error such as a reset from the peer shows at
// a later Write, and bytes written before Close are still sent after it (for
// up to 30 s). Larger Writes return once the kernel took all of them.
type Conn struct {
	l   *loop
	fd  *sysFD
	net string

	rmu      sync.Mutex // one Read (or WriteTo) at a time
	wmu      sync.Mutex // one Write (or ReadFrom) at a time
	rdl, wdl deadline
	rop, wop opSlot // the read-side and write-side op in flight (RECV, SEND, SPLICE, POLL), for deadlines and Close to cancel

	rq recvQueue // the multishot receive and what it queued
	sq sendQueue // the write-behind SEND (conn_send.go)

	wrShut atomic.Bool // CloseWrite shut the sending side down

	addrMu       sync.Mutex
	laddr, raddr net.Addr
}

// maxSend caps one SEND's length (the kernel's limit for one call is about 2 GiB).
const maxSend = 1 << 30

// newConn makes the Conn for a connected socket; raddr is the peer's
// address if known (nil: looked up when first asked for). Everything the
// executor's Close may touch is set before the descriptor is registered.
func newConn(l *loop, fd int, network string, raddr net.Addr) *Conn {
	c := &Conn{l: l, fd: makeSysFD(l, fd), net: network, raddr: raddr}
	c.fd.beforeExecClose = func() { c.addrs() }
	c.rq.init(l, c.fd)
	c.sq.init(l, c.fd)
	c.rdl.expire = func() {
		c.rop.cancel(c.l)
		c.rq.w.poke()
	}
	c.wdl.expire = func() {
		c.wop.cancel(c.l)
		c.sq.w.poke()
	}
	c.rop.passed, c.wop.passed = c.rdl.passed, c.wdl.passed
	c.fd.register()
	return c
}

// Read reads what has arrived, waiting for data if there is none. It
// returns io.EOF once the peer has shut down its side and everything it sent
// has been read.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.read(p)
}

// read is Read for a caller holding rmu.
func (c *Conn) read(p []byte) (int, error) {
	for {
		if err := c.fd.closedErr(); err != nil {
			return 0, c.opError("read", err)
		}
		if len(p) == 0 {
			return 0, nil
		}
		if c.rdl.passed() {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		n, next, err := c.rq.next(p)
		switch next {
		case recvGot:
			if err != nil && err != io.EOF {
				err = c.opError("read", err)
			}
			return n, err
		case recvRearm:
			c.rq.arm() // a failure shows at the next Read
			return n, nil
		case recvDirect:
			return c.recvInto(p)
		case recvArm:
			if err := c.rq.arm(); err == errNoBufRing {
				return c.recvInto(p)
			} else if err != nil {
				return 0, c.opError("read", err)
			}
		case recvWait:
			c.l.reapReady() // what the kernel finished may be for us
			c.rq.w.wait()   // data, EOF or an error; Close; the deadline
		}
	}
}

// recvInto receives straight into p with one RECV: for when the loop's
// buffers ran out or there is no buffer ring.
func (c *Conn) recvInto(p []byte) (int, error) {
	n, err := c.run(&c.rop, func(sqe *ring.SQE, fd int) { sqe.PrepRecv(fd, p, 0) })
	if err != nil {
		return 0, c.opError("read", syscallErr("read", err))
	}
	c.rq.direct(n)
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, or returns how much it wrote and why it stopped.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.write(p)
}

// write is Write for a caller holding wmu. Up to sendBehindMax bytes are
// copied and sent behind the caller's back (sendQueue); more are sent from
// p, each SEND waited for.
func (c *Conn) write(p []byte) (int, error) {
	if err := c.sendsDone(); err != nil {
		return 0, c.opError("write", err)
	}
	if len(p) > 0 && len(p) <= sendBehindMax {
		if err := c.sq.start(p); err != nil {
			return 0, c.opError("write", err)
		}
		return len(p), nil
	}
	n := 0
	for {
		if err := c.fd.closedErr(); err != nil {
			return n, c.opError("write", err)
		}
		if c.wdl.passed() {
			return n, c.opError("write", os.ErrDeadlineExceeded)
		}
		if n == len(p) {
			return n, nil
		}
		chunk := p[n:min(len(p), n+maxSend)]
		res, err := c.run(&c.wop, func(sqe *ring.SQE, fd int) { sqe.PrepSend(fd, chunk, unix.MSG_NOSIGNAL) })
		if err != nil {
			return n, c.opError("write", syscallErr("write", err))
		}
		if res == 0 {
			return n, c.opError("write", io.ErrShortWrite)
		}
		n += int(res)
	}
}

// sendsDone waits for the write-behind SEND in flight (the caller holds
// wmu) and says why a write-side call must not go on: the connection is
// closed, the write deadline passed, the SEND failed, or the sending side
// was shut down.
func (c *Conn) sendsDone() error {
	err := c.sq.wait(&c.wdl)
	switch {
	case c.fd.closedErr() != nil:
		err = c.fd.closedErr()
	case c.wdl.passed():
		err = os.ErrDeadlineExceeded
	case err == nil && c.wrShut.Load():
		err = syscall.EPIPE // the kernel's answer, given before a SEND is queued
	}
	return syscallErr("write", err)
}

// run runs one operation on the connection's descriptor through the loop's
// lifecycle and returns its count, or its error (outcome.cancelCause: Close,
// the executor's Close, the deadline through slot; or the kernel's errno).
func (c *Conn) run(slot *opSlot, prep func(sqe *ring.SQE, fd int)) (int, error) {
	f := c.fd
	return runFD(c.l, f, slot, prep)
}

// runFD runs one operation on descriptor f through the loop's lifecycle
// and returns its count, or its error (outcome.cancelCause: f's Close, the
// executor's Close, a deadline through slot; or the kernel's errno). prep
// gets f's descriptor.
func runFD(l *loop, f *sysFD, slot *opSlot, prep func(sqe *ring.SQE, fd int)) (int, error) {
	return l.run(context.Background(), f, slot, func(sqe *ring.SQE, _ *op) { prep(sqe, f.fd) })
}

// Close closes the connection: blocked and later calls fail with
// net.ErrClosed, operations in flight are cancelled, unread data is
// dropped, and the descriptor is closed once the kernel is done with it.
func (c *Conn) Close() error {
	c.addrs()      // while the descriptor can still tell them
	c.rq.mu.Lock() // a receive's CQE sees the descriptor closing, or its buffer is dropped
	first, open := c.fd.markClosed(fdOwner)
	if !first {
		c.rq.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.rq.dropLocked()
	c.rq.mu.Unlock()
	c.rq.w.poke()
	c.sq.w.poke()
	c.rdl.stop()
	c.wdl.stop()
	lingers := c.sq.pending()
	switch {
	case open && lingers:
		// The write-behind SEND goes on (sendQueue); the rest is cancelled
		// one by one, below.
		c.sq.lingerAfterClose()
		c.fd.releaseRef()
	case open:
		c.fd.dropOpen() // cancels the receive and anything else in flight on the descriptor
	}
	c.rop.cancel(c.l) // and a splice's op, whose SQE may name its pipe instead
	c.wop.cancel(c.l)
	if lingers {
		c.rq.ms.stop()
	} else {
		c.rq.ms.release()
	}
	return nil
}

// CloseWrite shuts down the sending side (SHUT_WR): the peer reads EOF
// after the data already written, and can still send.
// Bytes written before it go first: it waits for them to be in the socket.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.sq.wait(&c.wdl); err != nil && c.fd.closedErr() == nil {
		return c.opError("close", syscallErr("write", err))
	}
	if err := c.shutdown(unix.SHUT_WR); err != nil {
		return err
	}
	c.wrShut.Store(true)
	return nil
}

// CloseRead shuts down the receiving side (SHUT_RD).
func (c *Conn) CloseRead() error { return c.shutdown(unix.SHUT_RD) }

func (c *Conn) shutdown(how int) error {
	if err := c.fd.closedErr(); err != nil {
		return c.opError("close", err)
	}
	_, err := c.run(nil, func(sqe *ring.SQE, fd int) { sqe.PrepShutdown(fd, how) })
	if err != nil {
		return c.opError("close", syscallErr("shutdown", err))
	}
	return nil
}

// LocalAddr returns the local address (*net.TCPAddr or *net.UnixAddr).
func (c *Conn) LocalAddr() net.Addr { return c.addr(&c.laddr, unix.Getsockname) }

// RemoteAddr returns the peer's address (*net.TCPAddr or *net.UnixAddr).
func (c *Conn) RemoteAddr() net.Addr { return c.addr(&c.raddr, unix.Getpeername) }

// addr returns the address *p, looked up with get the first time.
func (c *Conn) addr(p *net.Addr, get func(int) (unix.Sockaddr, error)) net.Addr {
	c.addrMu.Lock()
	defer c.addrMu.Unlock()
	if *p == nil {
		*p = c.lookupAddr(get)
	}
	return *p
}

// LocalAddrPort returns the local address as a netip.AddrPort (IPv4 as
// IPv4); the zero value for a Unix socket.
func (c *Conn) LocalAddrPort() netip.AddrPort { return addrPortOf(c.LocalAddr()) }

// RemoteAddrPort returns the peer's address as a netip.AddrPort (IPv4 as
// IPv4); the zero value for a Unix socket.
func (c *Conn) RemoteAddrPort() netip.AddrPort { return addrPortOf(c.RemoteAddr()) }

// lookupAddr asks the kernel for an address of the socket; if it no longer
// can (closed, reset), it returns the zero address of the right type.
func (c *Conn) lookupAddr(get func(int) (unix.Sockaddr, error)) net.Addr {
	if c.fd.acquire() == nil {
		sa, err := get(c.fd.fd)
		c.fd.releaseRef()
		if a := netAddrOf(c.net, sa); err == nil && a != nil {
			return a
		}
	}
	if c.net == "unix" {
		return &net.UnixAddr{Net: "unix"}
	}
	return &net.TCPAddr{}
}

// SetDeadline sets the read and write deadlines. Calls blocked now and
// later fail once it passes, with an error for which
// errors.Is(err, os.ErrDeadlineExceeded) holds; the zero time removes it.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.fd.closedErr(); err != nil {
		return c.opError("set", err)
	}
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline for Read (see SetDeadline).
func (c *Conn) SetReadDeadline(t time.Time) error {
	if err := c.fd.closedErr(); err != nil {
		return c.opError("set", err)
	}
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for Write (see SetDeadline).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if err := c.fd.closedErr(); err != nil {
		return c.opError("set", err)
	}
	c.wdl.set(t)
	return nil
}

// opError wraps err as net does: a *net.OpError naming the operation and
// both addresses (asked of the kernel now if not yet known; only errors
// pay for that).
func (c *Conn) opError(op string, err error) error {
	src, dst := c.addrs()
	return &net.OpError{Op: op, Net: c.net, Source: src, Addr: dst, Err: netError(err)}
}

// addrs returns the local and the peer's address, looking up those not
// known yet. Close calls it before closing the descriptor, so that the
// errors of a closed connection name its addresses too, as net's do.
func (c *Conn) addrs() (local, remote net.Addr) { return c.LocalAddr(), c.RemoteAddr() }

var _ net.Conn = (*Conn)(nil)
