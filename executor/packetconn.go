//go:build linux

package executor

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// PacketConn is a UDP socket on io_uring, as ListenPacket returns it: a
// net.PacketConn whose ReadFrom is one RECVMSG and WriteTo one SENDMSG.
// One ReadFrom and one WriteTo may run at a time (others wait), with a
// concurrent Close.
type PacketConn struct {
	l      *loop
	fd     *sysFD
	net    string
	family int
	laddr  net.Addr
	raddr  net.Addr // the peer of a connected socket (Dial), else nil

	rmu, wmu sync.Mutex
	rdl, wdl deadline
	rop, wop opSlot  // the RECVMSG and the SENDMSG in flight, for deadlines to cancel
	rx, tx   *msgBuf // the message headers of the read and the write in flight

	filter  func(netip.AddrPort, []byte) Verdict
	dropped atomic.Uint64
}

// msgBuf holds a msghdr, its iovec and its address on the heap, where the
// kernel reads and writes them until the operation's completion.
type msgBuf struct {
	hdr  unix.Msghdr
	iov  unix.Iovec
	name rawSockaddr
}

// prepare points the header at p and at the address buffer, whose length
// is the whole buffer (receive) or the address set in it (send).
func (m *msgBuf) prepare(p []byte, namelen uint32) {
	m.iov = unix.Iovec{}
	if len(p) > 0 {
		m.iov.Base = &p[0]
	}
	m.iov.SetLen(len(p))
	m.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&m.name.any)), Namelen: namelen, Iov: &m.iov}
	m.hdr.SetIovlen(1)
}

// ListenPacket opens a UDP socket ("udp", "udp4", "udp6") bound to address,
// like net.ListenPacket, and returns a *PacketConn. With the Go backend
// (io_uring refused) it returns net.ListenPacket's connection, wrapped to
// apply WithPacketFilter.
func (e *Executor) ListenPacket(network, address string, opts ...NetOption) (net.PacketConn, error) {
	cfg, err := listenOptions(network, address, true, opts)
	if err != nil {
		return nil, err
	}
	if e.backend == BackendGo {
		return e.goListenPacket(network, address, &cfg)
	}
	k, err := e.listenKind(network, address, true)
	if err != nil {
		return nil, err
	}
	var fds []int
	var family int
	var laddr net.Addr // as resolved, for an error past resolving
	err = inNamespace(cfg.namespace, func() error {
		var sa unix.Sockaddr
		var v6only bool
		var ip netip.Addr
		var port uint16
		var err error
		if family, sa, v6only, ip, port, err = listenSockaddr(context.Background(), network, k, address); err != nil {
			return err
		}
		laddr = resolvedAddr(network, ip, port)
		fds, _, err = bindSockets(family, k, sa, v6only, 1, cfg.reusePort, cfg.sharePort)
		return err
	})
	if err != nil {
		return nil, listenOpError(network, laddr, err)
	}
	return e.newPacketConn(fds[0], network, family, cfg.packetFilter), nil
}

// newPacketConn makes a PacketConn of a UDP socket.
func (e *Executor) newPacketConn(fd int, network string, family int, filter func(netip.AddrPort, []byte) Verdict) *PacketConn {
	l := e.loop()
	pc := &PacketConn{l: l, fd: newSysFD(l, fd), net: network, family: family,
		rx: new(msgBuf), tx: new(msgBuf), filter: filter}
	pc.rdl.expire = func() { pc.rop.cancel(l) }
	pc.wdl.expire = func() { pc.wop.cancel(l) }
	pc.rop.passed, pc.wop.passed = pc.rdl.passed, pc.wdl.passed
	if sa, err := unix.Getsockname(fd); err == nil {
		pc.laddr = netAddrOf(network, sa)
	}
	if sa, err := unix.Getpeername(fd); err == nil { // connected: errors name the peer, as net's
		pc.raddr = netAddrOf(network, sa)
	}
	return pc
}

// ReadFrom receives one datagram into p (the rest of a longer one is lost)
// and returns its length and sender (a *net.UDPAddr).
func (pc *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := pc.ReadFromUDPAddrPort(p)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFromUDPAddrPort is ReadFrom returning the sender as a netip.AddrPort
// (IPv4 senders as IPv4 addresses).
func (pc *PacketConn) ReadFromUDPAddrPort(p []byte) (int, netip.AddrPort, error) {
	pc.rmu.Lock()
	defer pc.rmu.Unlock()
	m := pc.rx
	for {
		if err := pc.fd.closedErr(); err != nil {
			return 0, netip.AddrPort{}, pc.opError("read", nil, err)
		}
		if pc.rdl.passed() {
			return 0, netip.AddrPort{}, pc.opError("read", nil, os.ErrDeadlineExceeded)
		}
		m.name.any = unix.RawSockaddrAny{}
		m.prepare(p, unix.SizeofSockaddrAny)
		n, err := runFD(pc.l, pc.fd, &pc.rop, func(sqe *ring.SQE, fd int) { sqe.PrepRecvmsg(fd, &m.hdr, 0) })
		m.iov.Base = nil
		if err != nil {
			return 0, netip.AddrPort{}, pc.opError("read", nil, syscallErr("read", err))
		}
		from := addrPortOfSockaddr(m.name.sockaddr())
		if pc.filter != nil && pc.filter(from, p[:n]) == Drop {
			pc.dropped.Add(1)
			pc.l.net.dropped.Add(1)
			continue
		}
		return n, from, nil
	}
}

// WriteTo sends p as one datagram to addr (a *net.UDPAddr).
func (pc *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, pc.opError("write", addr, &net.AddrError{Err: "not a UDP address", Addr: addrString(addr)})
	}
	return pc.WriteToUDPAddrPort(p, ua.AddrPort())
}

func addrString(a net.Addr) string {
	if a == nil {
		return "<nil>"
	}
	return a.String()
}

// WriteToUDPAddrPort is WriteTo with the address as a netip.AddrPort.
func (pc *PacketConn) WriteToUDPAddrPort(p []byte, to netip.AddrPort) (int, error) {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	addr := net.UDPAddrFromAddrPort(to)
	if err := pc.fd.closedErr(); err != nil {
		return 0, pc.opError("write", addr, err)
	}
	if pc.wdl.passed() {
		return 0, pc.opError("write", addr, os.ErrDeadlineExceeded)
	}
	ip := to.Addr()
	switch {
	case pc.family == unix.AF_INET6 && ip.Is4():
		ip = netip.AddrFrom16(ip.As16()) // IPv4-mapped, for a dual-stack socket
	case pc.family == unix.AF_INET && ip.Is4In6():
		ip = ip.Unmap()
	case pc.family == unix.AF_INET && !ip.Is4():
		return 0, pc.opError("write", addr, &net.AddrError{Err: "IPv6 address on an IPv4 socket", Addr: to.String()})
	}
	m := pc.tx
	m.name.set(sockaddrOf(netip.AddrPortFrom(ip, to.Port())))
	m.prepare(p, m.name.len)
	n, err := runFD(pc.l, pc.fd, &pc.wop, func(sqe *ring.SQE, fd int) { sqe.PrepSendmsg(fd, &m.hdr, unix.MSG_NOSIGNAL) })
	m.iov.Base = nil
	if err != nil {
		return 0, pc.opError("write", addr, syscallErr("write", err))
	}
	return n, nil
}

// Close closes the socket: blocked and later calls fail with net.ErrClosed.
func (pc *PacketConn) Close() error {
	if !pc.fd.Close() { // cancels the calls in flight
		return pc.opError("close", nil, net.ErrClosed)
	}
	pc.rdl.stop()
	pc.wdl.stop()
	return nil
}

// LocalAddr returns the bound address (a *net.UDPAddr).
func (pc *PacketConn) LocalAddr() net.Addr { return pc.laddr }

// SetDeadline sets the read and write deadlines, with net.Conn's semantics.
func (pc *PacketConn) SetDeadline(t time.Time) error {
	if err := pc.fd.closedErr(); err != nil {
		return pc.opError("set", nil, err)
	}
	pc.rdl.set(t)
	pc.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline for ReadFrom.
func (pc *PacketConn) SetReadDeadline(t time.Time) error {
	if err := pc.fd.closedErr(); err != nil {
		return pc.opError("set", nil, err)
	}
	pc.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for WriteTo.
func (pc *PacketConn) SetWriteDeadline(t time.Time) error {
	if err := pc.fd.closedErr(); err != nil {
		return pc.opError("set", nil, err)
	}
	pc.wdl.set(t)
	return nil
}

// Dropped returns how many datagrams the filter dropped.
func (pc *PacketConn) Dropped() uint64 { return pc.dropped.Load() }

// opError wraps err as net does: the local address, and addr or else the
// peer of a connected socket.
func (pc *PacketConn) opError(op string, addr net.Addr, err error) error {
	if addr == nil {
		addr = pc.raddr
	}
	return &net.OpError{Op: op, Net: pc.net, Source: pc.laddr, Addr: addr, Err: netError(err)}
}

var _ net.PacketConn = (*PacketConn)(nil)
