package loadgen

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// dial opens n connections to addr with plain blocking connect calls
// (before the measured window, so their cost does not count): TCP with
// TCP_NODELAY set for sotype unix.SOCK_STREAM, connected UDP sockets for
// unix.SOCK_DGRAM. On error, the connections opened so far are closed.
func dial(addr string, n, sotype int) ([]int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("loadgen: address %q: want IP:PORT: %w", addr, err)
	}
	var sa unix.Sockaddr
	domain := unix.AF_INET
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		domain = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fds := make([]int, 0, n)
	for range n {
		fd, err := unix.Socket(domain, sotype|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			closeAll(fds)
			return nil, os.NewSyscallError("socket", err)
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, sa); err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("loadgen: connect %d/%d to %s: %w", len(fds), n, addr, err)
		}
		if sotype != unix.SOCK_STREAM {
			continue
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			closeAll(fds)
			return nil, os.NewSyscallError("setsockopt TCP_NODELAY", err)
		}
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
