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

// ListenOption configures Listen and ListenPacket.
type ListenOption interface{ applyListen(*listenConfig) }

// DialOption configures Dial.
type DialOption interface{ applyDial(*dialConfig) }

type listenConfig struct {
	filter       func(remote netip.AddrPort) Verdict
	packetFilter func(from netip.AddrPort, b []byte) Verdict
	reusePort    bool
	namespace    string
	keepAlive    *net.KeepAliveConfig // nil: the default
}

type dialConfig struct {
	namespace string
	keepAlive *net.KeepAliveConfig // nil: the default
}

type listenOption func(*listenConfig)

func (f listenOption) applyListen(c *listenConfig) { f(c) }

// WithFilter runs f on the remote address of every connection a listener
// accepts, before Accept returns it: a connection f drops is closed at once
// and counted (Listener.Dropped, Stats.FilterDropped). f runs in the
// goroutine that calls Accept. Unix-socket peers have no address: f gets the
// zero AddrPort. IPv4 peers of a dual-stack listener come as IPv4 addresses.
func WithFilter(f func(remote netip.AddrPort) Verdict) ListenOption {
	return listenOption(func(c *listenConfig) { c.filter = f })
}

// WithPacketFilter runs f on every datagram a PacketConn receives, before
// ReadFrom returns it: a datagram f drops is discarded and counted
// (PacketConn.Dropped, Stats.FilterDropped). b is valid only during the call.
func WithPacketFilter(f func(from netip.AddrPort, b []byte) Verdict) ListenOption {
	return listenOption(func(c *listenConfig) { c.packetFilter = f })
}

// ReusePort makes a TCP listener open one socket per loop, all bound to the
// same address with SO_REUSEPORT, each accepting on its own loop; the kernel
// spreads incoming connections over them. Accept returns connections from all
// of them.
func ReusePort() ListenOption {
	return listenOption(func(c *listenConfig) { c.reusePort = true })
}

// NamespaceOption creates sockets inside a network namespace; it works for
// both Listen and Dial. See WithNamespace.
type NamespaceOption struct{ path string }

// WithNamespace creates the socket of a Listen, ListenPacket or Dial inside
// the network namespace at path (such as /var/run/netns/NAME, made by
// `ip netns add NAME`) instead of the process's own (kasync's
// net::Namespace). Only the socket's creation happens there; it then works
// from any thread. Entering a namespace needs CAP_SYS_ADMIN.
func WithNamespace(path string) NamespaceOption { return NamespaceOption{path: path} }

func (o NamespaceOption) applyListen(c *listenConfig) { c.namespace = o.path }
func (o NamespaceOption) applyDial(c *dialConfig)     { c.namespace = o.path }

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
