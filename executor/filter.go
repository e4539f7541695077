package executor

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Verdict is a filter's decision on a connection or a datagram (kasync's
// net::filter).
type Verdict int

const (
	// Accept lets the connection or datagram through.
	Accept Verdict = iota
	// Drop closes the connection (or discards the datagram) before the
	// program sees it, and counts it.
	Drop
)

// DropCounter is implemented by the listeners and packet connections that
// Listen and ListenPacket return with a filter, on either backend.
type DropCounter interface {
	// Dropped returns how many connections or datagrams the filter dropped.
	Dropped() uint64
}

// goFilteredListener applies a WithFilter filter to a listener of Go's net
// package (the fallback backend).
type goFilteredListener struct {
	net.Listener
	filter  func(netip.AddrPort) Verdict
	dropped atomic.Uint64
}

func (fl *goFilteredListener) Accept() (net.Conn, error) {
	for {
		c, err := fl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if fl.filter(addrPortOf(c.RemoteAddr())) == Drop {
			c.Close()
			fl.dropped.Add(1)
			continue
		}
		return c, nil
	}
}

func (fl *goFilteredListener) Dropped() uint64 { return fl.dropped.Load() }

// SetDeadline sets Accept's deadline, as the Listener of the io_uring
// backend has it.
func (fl *goFilteredListener) SetDeadline(t time.Time) error {
	if d, ok := fl.Listener.(interface{ SetDeadline(time.Time) error }); ok {
		return d.SetDeadline(t)
	}
	return &net.OpError{Op: "set", Net: fl.Addr().Network(), Addr: fl.Addr(), Err: errors.ErrUnsupported}
}

// goFilteredPacketConn applies a WithPacketFilter filter to a packet
// connection of Go's net package (the fallback backend).
type goFilteredPacketConn struct {
	net.PacketConn
	filter  func(netip.AddrPort, []byte) Verdict
	dropped atomic.Uint64
}

func (fp *goFilteredPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := fp.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if fp.filter(addrPortOf(addr), p[:n]) == Drop {
			fp.dropped.Add(1)
			continue
		}
		return n, addr, nil
	}
}

func (fp *goFilteredPacketConn) Dropped() uint64 { return fp.dropped.Load() }
