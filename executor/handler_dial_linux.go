//go:build linux

package executor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// Server.Dial and Server.Adopt on an io_uring loop: the socket is made on
// the loop's thread and connected by a CONNECT on the loop's own ring,
// through its op table, with ctx's deadline as a LINK_TIMEOUT; ctx's
// cancellation is an ASYNC_CANCEL posted to the loop.

// dialRing is a Dial's io_uring state.
type dialRing struct {
	sas    []unix.Sockaddr // the addresses to try, in order
	i      int             // the one being tried
	fd     int             // its socket, while connecting
	op     *op             // the CONNECT in flight
	linked bool            // with a LINK_TIMEOUT
	cancel bool            // its ASYNC_CANCEL went out
	raddr  net.Addr
	rsa    rawSockaddr // the kernel reads it at submission
	first  error       // the first address's error
}

// ringDial is Dial on io_uring: a literal address goes to the loop at
// once, a name is resolved on a goroutine first.
func (l *hloop) ringDial(c *HConn) error {
	d := c.dial
	k, err := parseNetwork(d.network, false)
	if err != nil {
		return &net.OpError{Op: "dial", Net: d.network, Err: err}
	}
	if sas, ok := literalSockaddrs(k, d.address); ok {
		d.ring.sas = sas
		if !l.post(hmsg{kind: hmsgDial, c: c}, nil) {
			return &net.OpError{Op: "dial", Net: d.network, Err: ErrServerClosed}
		}
		return nil
	}
	return l.dialAside(c, func(ctx context.Context) {
		host, port, err := splitHostPortNum(ctx, d.network, d.address)
		var ips []netip.Addr
		if err == nil {
			ips, err = lookupHost(ctx, k, host)
		}
		if err != nil {
			d.err = dialError(d.network, nil, err)
			return
		}
		for _, ip := range ips {
			d.ring.sas = append(d.ring.sas, sockaddrOf(netip.AddrPortFrom(ip, port)))
		}
	})
}

// literalSockaddrs is address as socket addresses if no name needs
// resolving: a Unix path, or an IP (or nothing: the local system) and a
// numeric port.
func literalSockaddrs(k netKind, address string) ([]unix.Sockaddr, bool) {
	if k.unix {
		return []unix.Sockaddr{&unix.SockaddrUnix{Name: address}}, true
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, false
	}
	if host == "" {
		host = "127.0.0.1"
		if k.only6 {
			host = "::1"
		}
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil {
		return nil, false
	}
	ip := ap.Addr()
	if ip.Is4In6() && ip.Zone() == "" {
		ip = ip.Unmap()
	}
	if (k.only4 && !ip.Is4()) || (k.only6 && ip.Is4()) || ip.IsUnspecified() {
		return nil, false // lookupHost says why, or finds the pair for "::"
	}
	return []unix.Sockaddr{sockaddrOf(netip.AddrPortFrom(ip, ap.Port()))}, true
}

// ringConnect starts the CONNECT to c's next address, on the loop's thread.
func (l *hloop) ringConnect(c *HConn) {
	d := c.dial
	r := &d.ring
	k, _ := parseNetwork(d.network, false)
	if err := d.ctx.Err(); err != nil {
		l.dialFailed(c, dialError(d.network, nil, context.Cause(d.ctx)))
		return
	}
	sa := r.sas[r.i]
	r.raddr = netAddrOf(d.network, sa)
	fail := func(err error) {
		if r.first == nil {
			r.first = &net.OpError{Op: "dial", Net: d.network, Addr: r.raddr, Err: err}
		}
		l.dialNext(c)
	}
	family, fd, err := dialSocket(sa, k, &netConfig{})
	if err != nil {
		fail(err)
		return
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as Go's net does
	}
	if !r.rsa.set(sa) || !l.sqeSpace(2) {
		unix.Close(fd)
		fail(os.NewSyscallError("connect", syscall.EINVAL))
		return
	}
	r.fd, r.cancel = fd, false
	s := l.sqe()
	s.PrepConnect(fd, unsafe.Pointer(&r.rsa.any), r.rsa.len)
	r.op = l.newOp(s, func(res int32, _ uint32) { l.onConnect(c, res) })
	timeout, ok := dialDeadline(d.ctx)
	r.linked = ok
	if ok {
		s.SetFlags(ring.SQEIOLink)
		r.op.linkTS = unix.NsecToTimespec(int64(timeout))
		t := l.sqe()
		t.PrepLinkTimeout(&r.op.linkTS, 0)
		t.UserData = udIgnore
	}
	l.dialing = append(l.dialing, c)
	if d.stop == nil && d.ctx.Done() != nil {
		d.stop = context.AfterFunc(d.ctx, func() {
			l.post(hmsg{kind: hmsgDo, c: c, f: func(c *HConn) { l.cancelDial(c) }}, nil)
		})
	}
}

// dialNext tries c's next address, or fails the Dial with the first
// address's error.
func (l *hloop) dialNext(c *HConn) {
	r := &c.dial.ring
	if r.i+1 < len(r.sas) && c.dial.ctx.Err() == nil && !l.stopping {
		r.i++
		l.ringConnect(c)
		return
	}
	l.dialFailed(c, r.first)
}

// cancelDial asks c's CONNECT in flight, if any, to end (once).
func (l *hloop) cancelDial(c *HConn) {
	if c.dial == nil {
		return
	}
	r := &c.dial.ring
	if r.op != nil && !r.cancel && l.sqeSpace(1) {
		r.cancel = true
		l.cancelOp(r.op)
	}
}

// stopDials cancels the loop's CONNECTs in flight: the loop is stopping.
func (l *hloop) stopDials() {
	for _, c := range l.dialing {
		l.cancelDial(c)
	}
}

// onConnect is a CONNECT's completion.
func (l *hloop) onConnect(c *HConn, res int32) {
	d := c.dial
	r := &d.ring
	r.op = nil
	for i, dc := range l.dialing {
		if dc == c {
			l.dialing = append(l.dialing[:i], l.dialing[i+1:]...)
			break
		}
	}
	if res == 0 && !l.stopping {
		if d.stop != nil {
			d.stop()
		}
		c.raddr = r.raddr
		c.dial = nil
		l.openConn(c, int32(r.fd))
		return
	}
	unix.Close(r.fd)
	var err error
	switch {
	case l.stopping:
		l.dialFailed(c, ErrServerClosed)
		return
	case res == 0:
	case endedByCancel(res) && d.ctx.Err() != nil:
		err = context.Cause(d.ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = errDialTimeout{}
		}
	case endedByCancel(res) && r.linked:
		err = errDialTimeout{} // the LINK_TIMEOUT: ctx's deadline
	default:
		err = os.NewSyscallError("connect", syscall.Errno(-res))
	}
	if r.first == nil {
		r.first = &net.OpError{Op: "dial", Net: d.network, Addr: r.raddr, Err: err}
	}
	l.dialNext(c)
}

// openConn opens c, dialed or adopted, on descriptor fd.
func (l *hloop) openConn(c *HConn, fd int32) {
	c.fd = fd
	c.recvCB, c.sendCB = c.onRecv, c.onSend
	l.addConn(c)
}

// ringAdopt is Adopt on io_uring: the loop takes a duplicate of nc's
// descriptor, in blocking mode (io_uring would answer EAGAIN on a
// non-blocking one instead of waiting), and nc is closed.
func (l *hloop) ringAdopt(c *HConn, nc net.Conn) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return errors.New("executor: Server.Adopt: the conn has no descriptor (syscall.Conn)")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		return err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		derr = err
	}
	nc.Close()
	if derr != nil {
		return os.NewSyscallError("fcntl", derr)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("fcntl", err)
	}
	if !l.post(hmsg{kind: hmsgAdopt, c: c, fd: fd}, nil) {
		unix.Close(fd)
		return ErrServerClosed
	}
	return nil
}
