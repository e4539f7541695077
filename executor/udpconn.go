//go:build linux

package executor

import (
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// UDPConn is a connected UDP socket, as Dial("udp", ...) returns it: a
// net.Conn whose Write sends p as one datagram to the peer and whose Read
// receives one datagram from it (the rest of a longer one is lost), as with
// Go's *net.UDPConn from net.Dial. The kernel drops datagrams from anyone
// else, and a port that refused an earlier datagram (ICMP) makes a later
// Read or Write fail with ECONNREFUSED. It is a *PacketConn too.
type UDPConn struct {
	*PacketConn
	raddr netip.AddrPort
}

// Read receives one datagram from the peer into p.
func (c *UDPConn) Read(p []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(p)
	return n, err
}

// Write sends p to the peer as one datagram.
func (c *UDPConn) Write(p []byte) (int, error) {
	return c.WriteToUDPAddrPort(p, c.raddr)
}

// RemoteAddr returns the peer's address (a *net.UDPAddr).
func (c *UDPConn) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(c.raddr) }

// dialUDP makes a UDP socket and connects it to sa, which only sets the
// peer: nothing goes over the network, so connect(2) is called directly.
func (e *Executor) dialUDP(network string, k netKind, sa unix.Sockaddr, cfg *netConfig) (*UDPConn, error) {
	raddr := addrPortOfSockaddr(sa)
	fail := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: net.UDPAddrFromAddrPort(raddr), Err: netError(err)}
	}
	family, fd, err := dialSocket(sa, k, cfg)
	if err != nil {
		return nil, fail(err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fail(os.NewSyscallError("connect", err))
	}
	return &UDPConn{PacketConn: e.newPacketConn(fd, network, family, nil), raddr: raddr}, nil
}

var _ net.Conn = (*UDPConn)(nil)
