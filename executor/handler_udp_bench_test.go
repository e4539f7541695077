//go:build linux

package executor

import (
	"net"
	"net/netip"
	"testing"
)

// The packet fast path allocates nothing per datagram once its reply slots
// and op slots exist: measured over whole round trips, client included
// (Go's UDPConn's AddrPort calls allocate nothing either).
func TestServePacketAllocsNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s, err := e.ServePacket("udp4", "127.0.0.1:0", &udpEcho{}, ServeLoops(1))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c := udpClient(t, "udp4", "127.0.0.1:0")
		to := serverAddrPort(t, s, "127.0.0.1")
		msg, buf := make([]byte, 64), make([]byte, 64)
		roundTrip := func() {
			if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				t.Fatal(err)
			}
		}
		for range 1000 {
			roundTrip()
		}
		if a := testing.AllocsPerRun(2000, roundTrip); a != 0 {
			t.Fatalf("%v allocations per echoed datagram", a)
		}
	})
}

// BenchmarkServePacketEcho64 is 64-byte UDP ping-pong against one loop,
// with GOMAXPROCS clients; allocs/op counts both sides.
func BenchmarkServePacketEcho64(b *testing.B) {
	for _, bk := range []struct {
		name string
		opts []Option
		sopt []ServeOption
	}{
		{"io_uring", testBackends[0].opts, nil},
		{"io_uring-keepP", testBackends[0].opts, []ServeOption{ServeKeepP()}},
		{"go", testBackends[1].opts, nil},
	} {
		b.Run(bk.name, func(b *testing.B) {
			e, err := New(bk.opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			s, err := e.ServePacket("udp4", "127.0.0.1:0", &udpEcho{}, append(bk.sopt, ServeLoops(1))...)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.Addr().(*net.UDPAddr).Port))
			benchUDPPingPong(b, to)
		})
	}
}

// BenchmarkNetUDPEcho64 is BenchmarkServePacketEcho64 against Go's own
// net.UDPConn echo, one goroutine reading and answering, for comparison.
func BenchmarkNetUDPEcho64(b *testing.B) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	to := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	benchUDPPingPong(b, to)
}

// benchUDPPingPong sends 64-byte datagrams to to and waits for each echo,
// from GOMAXPROCS clients; allocs/op counts both sides.
func benchUDPPingPong(b *testing.B, to netip.AddrPort) {
	b.ReportAllocs()
	b.SetBytes(64)
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		msg, buf := make([]byte, 64), make([]byte, 64)
		for pb.Next() {
			if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
				b.Error(err)
				return
			}
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
