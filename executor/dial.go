//go:build linux

package executor

import (
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// Dial connects to address on a TCP ("tcp", "tcp4", "tcp6"), Unix ("unix")
// or UDP ("udp", "udp4", "udp6") network, like net.Dialer.DialContext. For
// TCP and Unix it returns a *Conn: the socket is made with socket(2) and
// connected by a CONNECT operation on io_uring; a deadline of ctx is
// enforced by the kernel too (LINK_TIMEOUT). For UDP it returns a *UDPConn.
// A name with several addresses is tried address by address. With the Go
// backend (io_uring refused) it returns net.Dialer's connection.
func (e *Executor) Dial(ctx context.Context, network, address string, opts ...NetOption) (net.Conn, error) {
	cfg, err := netOptions(callDial, opts)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if e.backend == BackendGo {
		return e.goDial(ctx, network, address, &cfg)
	}
	k, err := parseNetwork(network, false)
	if err != nil {
		if pk, perr := parseNetwork(network, true); perr == nil {
			k, err = pk, nil
		}
	}
	if err == nil && address == "" {
		err = errMissingAddress
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil { // as net: no address in an error before resolving
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var sas []unix.Sockaddr
	if k.unix {
		sas = []unix.Sockaddr{&unix.SockaddrUnix{Name: address}}
	} else {
		host, port, err := splitHostPortNum(ctx, network, address)
		if err == nil && host == "" { // the local system, as with net.Dial
			host = "127.0.0.1"
			if k.only6 {
				host = "::1"
			}
		}
		var ips []netip.Addr
		if err == nil {
			ips, err = lookupHost(ctx, k, host)
		}
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		for _, ip := range ips {
			sas = append(sas, sockaddrOf(netip.AddrPortFrom(ip, port)))
		}
	}
	var first error
	for _, sa := range sas {
		var c net.Conn
		if k.stream {
			c, err = e.dialOne(ctx, network, k, sa, &cfg)
		} else {
			c, err = e.dialUDP(network, k, sa, &cfg)
		}
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// dialOne makes a socket and connects it to sa.
func (e *Executor) dialOne(ctx context.Context, network string, k netKind, sa unix.Sockaddr, cfg *netConfig) (*Conn, error) {
	raddr := netAddrOf(network, sa)
	fail := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: netError(err)}
	}
	family, fd, err := dialSocket(sa, k, cfg)
	if err != nil {
		return nil, fail(err)
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as Go's net does
		setKeepAlive(fd, cfg.keepAlive)
	}
	rsa := new(rawSockaddr)
	if !rsa.set(sa) {
		unix.Close(fd)
		return nil, fail(syscall.EINVAL)
	}
	l := e.loop()
	_, err = l.do(ctx, func(sqe *ring.SQE, _ *op) { sqe.PrepConnect(fd, unsafe.Pointer(&rsa.any), rsa.len) })
	runtime.KeepAlive(rsa)
	if err != nil {
		unix.Close(fd)
		if errno, ok := err.(syscall.Errno); ok {
			err = os.NewSyscallError("connect", errno)
		}
		return nil, fail(err)
	}
	return newConn(l, fd, network, raddr), nil
}
