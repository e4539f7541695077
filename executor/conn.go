package executor

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
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
// stops receiving until Read catches up. Each Write is one SEND (more if the
// kernel takes only part), batched with everything else the loop submits.
type Conn struct {
	l    *loop
	fd   *sysFD
	net  string
	ctx  context.Context         // done once Close begins; cuts splices short
	stop context.CancelCauseFunc // with errClosedFD

	rmu      sync.Mutex // one Read (or WriteTo) at a time
	wmu      sync.Mutex // one Write (or ReadFrom) at a time
	rdl, wdl deadline
	rop, wop opSlot // the RECV and the SEND in flight, for deadlines to cancel

	// Receive state. A receive's onCQE takes mu with the loop locked, so mu
	// is never held while taking the loop's lock.
	mu       sync.Mutex
	rq       []recvBuf // filled buffers not yet read, oldest first
	rqHead   int
	br       *ring.BufRing // the loop's, once a receive was armed
	armed    bool          // the multishot receive is in flight
	recvOp   *op           // the multishot receive (in flight or ended), not yet released
	recvCur  *op           // the receive being armed or in flight (written and read with the loop locked)
	capped   bool          // its cancellation was asked: rq is full
	noBufs   bool          // it ended for want of buffers: receive into the caller's buffer
	eof      bool
	rerr     syscall.Errno // the error that ended receiving
	waiting  bool          // a Read sleeps on wake
	wake     chan struct{}
	onRecvFn func(res int32, flags uint32)

	addrMu       sync.Mutex
	laddr, raddr net.Addr
}

// recvBuf is a provided buffer holding n unread bytes from off.
type recvBuf struct {
	id     uint16
	off, n int
}

// maxSend caps one SEND's length (the kernel's limit for one call is about 2 GiB).
const maxSend = 1 << 30

func newConn(l *loop, fd int, network string) *Conn {
	ctx, stop := context.WithCancelCause(context.Background())
	c := &Conn{l: l, fd: newSysFD(l, fd), net: network, ctx: ctx, stop: stop, wake: make(chan struct{}, 1)}
	c.onRecvFn = c.onRecv
	c.rdl.expire = func() {
		c.rop.cancel(c.l)
		c.poke()
	}
	c.wdl.expire = func() { c.wop.cancel(c.l) }
	c.rop.passed, c.wop.passed = c.rdl.passed, c.wdl.passed
	return c
}

// poke wakes a Read sleeping on wake, to look again.
func (c *Conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
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
		c.mu.Lock()
		if c.rqHead < len(c.rq) {
			n := c.takeLocked(p)
			rearm := !c.armed && c.rqHead == len(c.rq) && c.rerr == 0 && !c.eof
			c.mu.Unlock()
			if rearm {
				c.arm() // a failure shows at the next Read
			}
			return n, nil
		}
		if c.rerr != 0 {
			errno := c.rerr
			c.mu.Unlock()
			return 0, c.opError("read", os.NewSyscallError("read", errno))
		}
		if c.eof {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if !c.armed {
			direct := c.noBufs
			c.mu.Unlock()
			if direct {
				return c.recvInto(p)
			}
			if err := c.arm(); err == errNoBufRing {
				return c.recvInto(p)
			} else if err != nil {
				return 0, c.opError("read", err)
			}
			continue
		}
		c.waiting = true
		c.mu.Unlock()
		c.l.reapReady() // what the kernel finished may be for us
		<-c.wake        // data, EOF or an error; Close; the deadline

	}
}

// takeLocked copies queued data into p and hands drained buffers back.
func (c *Conn) takeLocked(p []byte) int {
	var ids [16]uint16
	k, n := 0, 0
	for n < len(p) && c.rqHead < len(c.rq) {
		b := &c.rq[c.rqHead]
		m := copy(p[n:], c.br.Buf(b.id)[b.off:b.off+b.n])
		n += m
		b.off += m
		b.n -= m
		if b.n == 0 {
			c.rqHead++
			ids[k] = b.id
			if k++; k == len(ids) {
				c.l.net.recycle(ids[:k], true)
				k = 0
			}
		}
	}
	if c.rqHead == len(c.rq) {
		c.rq, c.rqHead = c.rq[:0], 0
	}
	c.l.net.recycle(ids[:k], true)
	return n
}

// dropQueueLocked hands every queued buffer back unread (Close).
func (c *Conn) dropQueueLocked() {
	var ids [16]uint16
	k := 0
	for _, b := range c.rq[c.rqHead:] {
		ids[k] = b.id
		if k++; k == len(ids) {
			c.l.net.recycle(ids[:k], true)
			k = 0
		}
	}
	c.l.net.recycle(ids[:k], true)
	c.rq, c.rqHead = nil, 0
}

var errNoBufRing = errors.New("no provided-buffer ring")

// arm starts the multishot receive, first releasing the one that ended.
// The caller holds rmu. errNoBufRing: the loop has no buffer ring.
func (c *Conn) arm() error {
	c.mu.Lock()
	old := c.recvOp
	c.recvOp = nil
	c.mu.Unlock()
	if old != nil {
		c.endRecv(old)
	}
	br := c.l.bufRing()
	if br == nil {
		if c.l.isClosing() {
			return ErrClosed
		}
		return errNoBufRing
	}
	c.mu.Lock()
	c.br = br
	c.armed, c.capped, c.noBufs = true, false, false
	c.mu.Unlock()
	fd := c.fd.fd
	err := c.l.startHeld(c.fd, func(sqe *ring.SQE, o *op) {
		sqe.PrepRecvMultishot(fd, 0, netBufGroup)
		o.onCQE = c.onRecvFn
		c.recvCur = o
	}, func(o *op) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.fd.isClosing() {
			return false
		}
		c.recvOp = o
		return true
	})
	if err != nil {
		c.mu.Lock()
		c.armed = false
		c.mu.Unlock()
		return netError(err)
	}
	return nil
}

// endRecv waits for the multishot receive's last CQE (it has ended or been
// cancelled) and releases it and its descriptor reference.
func (c *Conn) endRecv(o *op) { c.l.endHeld(c.fd, o) }

// onRecv handles each CQE of the multishot receive, with the loop locked.
func (c *Conn) onRecv(res int32, flags uint32) {
	more := flags&ring.CQEFMore != 0
	c.mu.Lock()
	switch {
	case res > 0 && flags&ring.CQEFBuffer != 0:
		id := uint16(flags >> 16)
		if c.fd.isClosing() {
			c.l.net.recycle([]uint16{id}, false)
			break
		}
		c.l.net.lend()
		c.rq = append(c.rq, recvBuf{id: id, n: int(res)})
		if more && !c.capped && len(c.rq)-c.rqHead >= connMaxQueued {
			c.capped = true
			c.l.cancelFromCQE(c.recvCur)
		}
	case res == 0:
		c.eof = true
	case res == -int32(syscall.ENOBUFS):
		c.noBufs = true
	case res < 0 && !endedByCancel(res):
		c.rerr = syscall.Errno(-res)
	}
	if !more {
		c.armed = false
	}
	if c.waiting {
		c.waiting = false
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
}

// recvInto receives straight into p with one RECV: for when the loop's
// buffers ran out or there is no buffer ring.
func (c *Conn) recvInto(p []byte) (int, error) {
	n, err := c.run(&c.rop, func(sqe *ring.SQE, fd int) { sqe.PrepRecv(fd, p, 0) })
	if err != nil {
		return 0, c.opError("read", syscallErr("read", err))
	}
	c.mu.Lock()
	if n > 0 {
		c.noBufs = false // multishot again at the next Read
	} else {
		c.eof = true
	}
	c.mu.Unlock()
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

// write is Write for a caller holding wmu.
func (c *Conn) write(p []byte) (int, error) {
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

// run runs one operation on the connection's descriptor through the loop's
// lifecycle and returns its count, or its error (outcome.cancelCause: Close,
// the executor's Close, the deadline through slot; or the kernel's errno).
func (c *Conn) run(slot *opSlot, prep func(sqe *ring.SQE, fd int)) (int, error) {
	f := c.fd
	return c.l.run(context.Background(), f, nil, slot, func(sqe *ring.SQE, _ *op) { prep(sqe, f.fd) })
}

// runOn runs one operation on descriptor f through the loop's lifecycle,
// cut short by ctx (the owner's Close, whose cause is errClosedFD), by
// cancel (a deadline) or by the executor's Close, and returns its count or
// its error, as Conn.run does.
func runOn(l *loop, f *sysFD, ctx context.Context, cancel <-chan struct{}, prep func(sqe *ring.SQE, fd int)) (int, error) {
	return l.run(ctx, f, cancel, nil, func(sqe *ring.SQE, _ *op) { prep(sqe, f.fd) })
}

// Close closes the connection: blocked and later calls fail with
// net.ErrClosed, operations in flight are cancelled, unread data is
// dropped, and the descriptor is closed once the kernel is done with it.
func (c *Conn) Close() error {
	c.addrs() // while the descriptor can still tell them
	c.mu.Lock()
	first, open := c.fd.markClosed(fdOwner)
	if !first {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.dropQueueLocked()
	o := c.recvOp
	c.recvOp = nil
	c.mu.Unlock()
	c.poke()
	c.stop(errClosedFD)
	c.rdl.stop()
	c.wdl.stop()
	if open {
		c.fd.dropOpen() // cancels the receive and anything else in flight
	}
	if o != nil {
		c.endRecv(o)
	}
	return nil
}

// CloseWrite shuts down the sending side (SHUT_WR): the peer reads EOF
// after the data already written, and can still send.
func (c *Conn) CloseWrite() error { return c.shutdown(unix.SHUT_WR) }

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
func (c *Conn) LocalAddr() net.Addr {
	c.addrMu.Lock()
	defer c.addrMu.Unlock()
	if c.laddr == nil {
		c.laddr = c.lookupAddr(unix.Getsockname)
	}
	return c.laddr
}

// RemoteAddr returns the peer's address (*net.TCPAddr or *net.UnixAddr).
func (c *Conn) RemoteAddr() net.Addr {
	c.addrMu.Lock()
	defer c.addrMu.Unlock()
	if c.raddr == nil {
		c.raddr = c.lookupAddr(unix.Getpeername)
	}
	return c.raddr
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
func (c *Conn) addrs() (local, remote net.Addr) {
	c.addrMu.Lock()
	defer c.addrMu.Unlock()
	if c.laddr == nil {
		c.laddr = c.lookupAddr(unix.Getsockname)
	}
	if c.raddr == nil {
		c.raddr = c.lookupAddr(unix.Getpeername)
	}
	return c.laddr, c.raddr
}

var _ net.Conn = (*Conn)(nil)
