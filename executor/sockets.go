//go:build linux

package executor

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Sockets: how the executor makes, configures and binds the sockets its
// listeners, packet conns, dialed conns and servers use. Nothing here touches
// a ring; the descriptors are handed to their owners (newSysFD) afterwards.

// bindSockets makes n sockets bound to sa (bindSocket), with SO_REUSEPORT if
// n > 1, reusePort or share: the first binds sa, the others the address the
// first got (so the port the kernel picked for port 0). It returns their
// descriptors and that bound address, or closes them all and fails. It is
// the one loop of Listen, ListenPacket and the fast path's Serve.
//
// SO_REUSEPORT would let the sockets join a group another socket of the
// same user already holds on sa (another server, in this process or
// another), and the kernel would split the connections between them
// silently. Unless share asks for just that, a probe first checks that no
// socket holds the address (probeAddr), so that a port in use fails with
// EADDRINUSE as net.Listen does.
func bindSockets(family int, k netKind, sa unix.Sockaddr, v6only bool, n int, reusePort, share bool) ([]int, unix.Sockaddr, error) {
	reusePort = reusePort || share || n > 1
	if reusePort && !share && family != unix.AF_UNIX {
		var err error
		if sa, err = probeAddr(family, k, sa, v6only); err != nil {
			return nil, nil, err
		}
	}
	fds := make([]int, 0, n)
	for i := 0; i < n; i++ {
		fd, err := bindSocket(family, k, sa, v6only, reusePort)
		if err != nil {
			closeAll(fds)
			return nil, nil, err
		}
		fds = append(fds, fd)
		if i == 0 {
			if sa, err = unix.Getsockname(fd); err != nil {
				closeAll(fds)
				return nil, nil, os.NewSyscallError("getsockname", err)
			}
		}
	}
	return fds, sa, nil
}

// probeAddr binds a probe socket to sa without SO_REUSEPORT, as net.Listen
// would bind it, and returns the address it got (for port 0, a port no
// socket holds), or the bind's error: EADDRINUSE if a socket holds sa,
// SO_REUSEPORT or not. The probe is closed before the caller binds its
// SO_REUSEPORT sockets (it would conflict with them), which leaves a race:
// a socket with SO_REUSEPORT of the same user that binds the address
// between the probe's close and the first real bind is joined as before
// (one without SO_REUSEPORT makes that bind fail with EADDRINUSE). For port
// 0 that needs a socket bound to the port the probe was just given.
func probeAddr(family int, k netKind, sa unix.Sockaddr, v6only bool) (unix.Sockaddr, error) {
	fd, err := unix.Socket(family, k.sockType(), 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if k.stream { // as bindSocket: a TIME_WAIT connection is no conflict
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(v6only)); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	return got, nil
}

// bindSocket makes a socket bound to sa, listening if it is a stream one.
// TCP listeners get SO_REUSEADDR, as with Go's net, and TCP_NODELAY, which
// the connections they accept inherit.
func bindSocket(family int, k netKind, sa unix.Sockaddr, v6only, reusePort bool) (int, error) {
	fd, err := unix.Socket(family, k.sockType(), 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (int, error) {
		unix.Close(fd)
		return -1, os.NewSyscallError(call, err)
	}
	if family != unix.AF_UNIX {
		if k.stream {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				return fail("setsockopt", err)
			}
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
				return fail("setsockopt", err)
			}
		}
		if reusePort {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				return fail("setsockopt", err)
			}
		}
		if family == unix.AF_INET6 {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(v6only)); err != nil {
				return fail("setsockopt", err)
			}
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if k.stream {
		if err := unix.Listen(fd, listenBacklog()); err != nil {
			return fail("listen", err)
		}
	}
	return fd, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// listenBacklog is the kernel's somaxconn, as Go's net uses.
var listenBacklog = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return 4096
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return 4096
	}
	return min(n, 1<<16-1)
})

// streamSockaddr resolves a stream listener's address.
func streamSockaddr(network string, k netKind, address string) (int, unix.Sockaddr, bool, error) {
	family, sa, v6only, _, err := resolveStream(network, k, address)
	return family, sa, v6only, err
}

// resolveStream is streamSockaddr also returning the address as net names
// it in a listen error past resolving.
func resolveStream(network string, k netKind, address string) (int, unix.Sockaddr, bool, net.Addr, error) {
	if k.unix {
		return unix.AF_UNIX, &unix.SockaddrUnix{Name: address}, false, &net.UnixAddr{Name: address, Net: network}, nil
	}
	family, sa, v6only, ip, port, err := listenSockaddr(context.Background(), network, k, address)
	if err != nil {
		return 0, nil, false, nil, err
	}
	return family, sa, v6only, resolvedAddr(network, ip, port), nil
}

// dialSocket makes a socket of k's type for a connection to sa, in cfg's
// namespace, and returns its family and descriptor.
func dialSocket(sa unix.Sockaddr, k netKind, cfg *netConfig) (family, fd int, err error) {
	switch sa.(type) {
	case *unix.SockaddrInet4:
		family = unix.AF_INET
	case *unix.SockaddrInet6:
		family = unix.AF_INET6
	default:
		family = unix.AF_UNIX
	}
	err = inNamespace(cfg.namespace, func() (err error) {
		if fd, err = unix.Socket(family, k.sockType(), 0); err != nil {
			return os.NewSyscallError("socket", err)
		}
		return nil
	})
	return family, fd, err
}
