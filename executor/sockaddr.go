//go:build linux

package executor

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Addresses: kasync speaks netip (netip.Addr, netip.AddrPort) inside and
// hands out net.Addr values (*net.TCPAddr, *net.UDPAddr, *net.UnixAddr) as
// net.Conn and net.Listener promise.

// netKind sorts a network name into what the socket layer needs.
type netKind struct {
	stream bool // SOCK_STREAM, else SOCK_DGRAM
	unix   bool // AF_UNIX
	only4  bool // tcp4, udp4
	only6  bool // tcp6, udp6
}

func parseNetwork(network string, packet bool) (netKind, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		if !packet {
			return netKind{stream: true, only4: network == "tcp4", only6: network == "tcp6"}, nil
		}
	case "udp", "udp4", "udp6":
		if packet {
			return netKind{only4: network == "udp4", only6: network == "udp6"}, nil
		}
	case "unix":
		if !packet {
			return netKind{stream: true, unix: true}, nil
		}
	}
	return netKind{}, net.UnknownNetworkError(network)
}

// sockType is the socket(2) type for k, close-on-exec. The sockets stay
// blocking: io_uring never blocks on them, and splice in io-wq wants them so.
func (k netKind) sockType() int {
	if k.stream {
		return unix.SOCK_STREAM | unix.SOCK_CLOEXEC
	}
	return unix.SOCK_DGRAM | unix.SOCK_CLOEXEC
}

// splitHostPortNum splits address into host and a numeric port (service
// names are looked up).
func splitHostPortNum(ctx context.Context, network, address string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	if port == "" {
		return host, 0, nil
	}
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		return host, uint16(n), nil
	}
	n, err := net.DefaultResolver.LookupPort(ctx, network, port)
	if err != nil {
		return "", 0, err
	}
	return host, uint16(n), nil
}

// lookupHost returns the addresses of host (an IP literal, possibly with a
// zone, or a name), IPv4-mapped ones unmapped, filtered by k.
func lookupHost(ctx context.Context, k netKind, host string) ([]netip.Addr, error) {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		fam := "ip"
		if k.only4 {
			fam = "ip4"
		} else if k.only6 {
			fam = "ip6"
		}
		if ips, err = net.DefaultResolver.LookupNetIP(ctx, fam, host); err != nil {
			return nil, err
		}
	}
	// As net does: "::" alone also stands for "0.0.0.0" (tcp4, udp4).
	if len(ips) == 1 && ips[0] == netip.IPv6Unspecified() {
		ips = append(ips, netip.IPv4Unspecified())
	}
	var out []netip.Addr
	for _, ip := range ips {
		if ip.Is4In6() && ip.Zone() == "" {
			ip = ip.Unmap()
		}
		if (k.only4 && !ip.Is4()) || (k.only6 && ip.Is4()) {
			continue
		}
		out = append(out, ip)
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	return out, nil
}

// listenSockaddr resolves a listener's address as Go's net does: "" or a
// missing host is the wildcard, a missing port any port; a wildcard (also
// "0.0.0.0" or "::") for "tcp"/"udp" is dual-stack IPv6 where the host has
// IPv6, IPv4 otherwise; a name resolves to its first IPv4 address if it
// has one. v6only is the IPV6_V6ONLY value to set on an AF_INET6 socket;
// resolved is the address as net names it in a listen error (a nil IP for
// a missing host).
func listenSockaddr(ctx context.Context, network string, k netKind, address string) (family int, sa unix.Sockaddr, v6only bool, resolved netip.Addr, port uint16, err error) {
	var host string
	if address != "" {
		if host, port, err = splitHostPortNum(ctx, network, address); err != nil {
			return 0, nil, false, netip.Addr{}, 0, err
		}
	}
	var ip netip.Addr // invalid: the wildcard
	if host != "" {
		ips, err := lookupHost(ctx, k, host)
		if err != nil {
			return 0, nil, false, netip.Addr{}, 0, err
		}
		ip = ips[0]
		for _, c := range ips {
			if c.Is4() {
				ip = c
				break
			}
		}
	}
	switch {
	case k.only4:
		bind := ip
		if !bind.IsValid() {
			bind = netip.IPv4Unspecified()
		}
		return unix.AF_INET, sockaddrOf(netip.AddrPortFrom(bind, port)), false, ip, port, nil
	case k.only6:
		bind := ip
		if !bind.IsValid() {
			bind = netip.IPv6Unspecified()
		}
		return unix.AF_INET6, sockaddrOf(netip.AddrPortFrom(bind, port)), true, ip, port, nil
	case !ip.IsValid() || ip.IsUnspecified():
		if hasIPv6() {
			return unix.AF_INET6, &unix.SockaddrInet6{Port: int(port)}, false, ip, port, nil
		}
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(port)}, false, ip, port, nil
	case ip.Is4():
		return unix.AF_INET, sockaddrOf(netip.AddrPortFrom(ip, port)), false, ip, port, nil
	}
	return unix.AF_INET6, sockaddrOf(netip.AddrPortFrom(ip, port)), false, ip, port, nil
}

// resolvedAddr is the address net puts in a listen error: the address as
// resolved, before the socket (":80" for a missing host).
func resolvedAddr(network string, ip netip.Addr, port uint16) net.Addr {
	if network[0] == 'u' {
		if !ip.IsValid() {
			return &net.UDPAddr{Port: int(port)}
		}
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port))
	}
	if !ip.IsValid() {
		return &net.TCPAddr{Port: int(port)}
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, port))
}

// hasIPv6 reports whether the host can open IPv6 sockets (asked once).
var hasIPv6 = sync.OnceValue(func() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// sockaddrOf turns an address into a unix.Sockaddr of its own family.
func sockaddrOf(ap netip.AddrPort) unix.Sockaddr {
	ip := ap.Addr()
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		if n, err := strconv.Atoi(z); err == nil {
			sa.ZoneId = uint32(n)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa
}

// addrPortOfSockaddr returns an IP socket address as netip, IPv4-mapped
// IPv6 addresses unmapped; the zero AddrPort for anything else.
func addrPortOfSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if ip.Is4In6() {
			ip = ip.Unmap()
		} else if sa.ZoneId != 0 {
			ip = ip.WithZone(zoneName(sa.ZoneId))
		}
		return netip.AddrPortFrom(ip, uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func zoneName(index uint32) string {
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		return ifi.Name
	}
	return strconv.Itoa(int(index))
}

// netAddrOf turns a socket address into the net.Addr type of network
// (nil if sa is nil).
func netAddrOf(network string, sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: network}
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		ap := addrPortOfSockaddr(sa)
		if network[0] == 'u' {
			return net.UDPAddrFromAddrPort(ap)
		}
		return net.TCPAddrFromAddrPort(ap)
	}
	return nil
}

// rawSockaddr is a socket address in the kernel's layout, on the heap, for
// CONNECT and SENDMSG, which read it after the call that prepared them.
type rawSockaddr struct {
	any unix.RawSockaddrAny
	len uint32
}

// set fills r with sa; false if sa's kind is not supported.
func (r *rawSockaddr) set(sa unix.Sockaddr) bool {
	r.any = unix.RawSockaddrAny{}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.any))
		p.Family = unix.AF_INET
		putPort(&p.Port, sa.Port)
		p.Addr = sa.Addr
		r.len = unix.SizeofSockaddrInet4
	case *unix.SockaddrInet6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.any))
		p.Family = unix.AF_INET6
		putPort(&p.Port, sa.Port)
		p.Addr = sa.Addr
		p.Scope_id = sa.ZoneId
		r.len = unix.SizeofSockaddrInet6
	case *unix.SockaddrUnix:
		p := (*unix.RawSockaddrUnix)(unsafe.Pointer(&r.any))
		p.Family = unix.AF_UNIX
		name := sa.Name
		if len(name) >= len(p.Path) {
			return false
		}
		for i := 0; i < len(name); i++ {
			p.Path[i] = int8(name[i])
		}
		r.len = uint32(unsafe.Offsetof(p.Path)) + uint32(len(name))
		if len(name) > 0 && name[0] == '@' { // abstract: leading NUL, no trailing one
			p.Path[0] = 0
		} else {
			r.len++
		}
	default:
		return false
	}
	return true
}

// sockaddr parses r (as filled in by the kernel, e.g. RECVMSG's name).
func (r *rawSockaddr) sockaddr() unix.Sockaddr {
	switch r.any.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.any))
		return &unix.SockaddrInet4{Port: getPort(&p.Port), Addr: p.Addr}
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.any))
		return &unix.SockaddrInet6{Port: getPort(&p.Port), Addr: p.Addr, ZoneId: p.Scope_id}
	}
	return nil
}

// putPort stores a port in network byte order, as sockaddr_in wants it.
func putPort(field *uint16, port int) {
	b := (*[2]byte)(unsafe.Pointer(field))
	b[0], b[1] = byte(port>>8), byte(port)
}

// getPort reads a port stored in network byte order.
func getPort(field *uint16) int {
	b := (*[2]byte)(unsafe.Pointer(field))
	return int(b[0])<<8 | int(b[1])
}
