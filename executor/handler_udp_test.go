//go:build linux

package executor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

// udpEcho echoes every datagram, noting truncation.
type udpEcho struct {
	mu    sync.Mutex
	trunc int
}

func (h *udpEcho) OnPacket(w *PacketWriter, from netip.AddrPort, data []byte) {
	if w.Truncated() {
		h.mu.Lock()
		h.trunc++
		h.mu.Unlock()
	}
	w.WriteTo(data, from)
}

// udpClient is a UDP socket on Go's net talking to srv.
func udpClient(t *testing.T, network, laddr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(laddr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadBuffer(1 << 20)
	return c
}

// udpRoundTrip sends p to to and returns the answer.
func udpRoundTrip(t *testing.T, c *net.UDPConn, to netip.AddrPort, p []byte, max int) []byte {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(p, to); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, max)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("%d bytes: %v", len(p), err)
	}
	if from.Port() != to.Port() {
		t.Fatalf("answer from %v, want %v", from, to)
	}
	return buf[:n]
}

func serverAddrPort(t *testing.T, s *PacketServer, ip string) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(s.Addr().(*net.UDPAddr).Port))
}

// TestServePacketSizes echoes datagrams of every size up to UDP's largest,
// byte-exact, over IPv4 and IPv6, on both backends.
func TestServePacketSizes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, tc := range []struct{ network, addr, client string }{
			{"udp4", "127.0.0.1:0", "127.0.0.1:0"},
			{"udp6", "[::1]:0", "[::1]:0"},
			{"udp", "127.0.0.1:0", "127.0.0.1:0"},
		} {
			t.Run(tc.network, func(t *testing.T) {
				h := &udpEcho{}
				s, err := e.ServePacket(tc.network, tc.addr, h, ServeLoops(2), ServeBuffers(65507, 16))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				c := udpClient(t, tc.network, tc.client)
				to := serverAddrPort(t, s, netip.MustParseAddrPort(tc.addr).Addr().String())
				for _, n := range []int{1, 100, 1472, 9000, 65507} {
					p := offsetBytes(n)
					if got := udpRoundTrip(t, c, to, p, 70000); !bytes.Equal(got, p) {
						t.Fatalf("%d bytes: got %d bytes back, not the same", n, len(got))
					}
				}
				st := s.Stats()
				if st.Truncated != 0 || h.trunc != 0 {
					t.Fatalf("truncated: %+v", st)
				}
			})
		}
	})
}

// TestServePacketDualStack: on a dual-stack socket an IPv4 sender is seen
// as IPv4, and answered.
func TestServePacketDualStack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		var got netip.AddrPort
		var mu sync.Mutex
		s, err := e.ServePacket("udp", ":0", PacketHandlerFunc(func(w *PacketWriter, from netip.AddrPort, data []byte) {
			mu.Lock()
			got = from
			mu.Unlock()
			w.WriteTo(data, from)
		}), ServeLoops(1))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c := udpClient(t, "udp4", "127.0.0.1:0")
		if b := udpRoundTrip(t, c, serverAddrPort(t, s, "127.0.0.1"), []byte("v4"), 100); string(b) != "v4" {
			t.Fatalf("got %q", b)
		}
		mu.Lock()
		defer mu.Unlock()
		if !got.Addr().Is4() || got.Port() != uint16(c.LocalAddr().(*net.UDPAddr).Port) {
			t.Fatalf("sender %v, want %v", got, c.LocalAddr())
		}
	})
}

// TestServePacketTruncated: a datagram over the buffer size reaches the
// handler cut to it, reported as truncated, as net's ReadFrom cuts it.
func TestServePacketTruncated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		h := &udpEcho{}
		s, err := e.ServePacket("udp4", "127.0.0.1:0", h, ServeLoops(1), ServeBuffers(1000, 16))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c := udpClient(t, "udp4", "127.0.0.1:0")
		to := serverAddrPort(t, s, "127.0.0.1")
		p := offsetBytes(1500)
		if got := udpRoundTrip(t, c, to, p, 2000); !bytes.Equal(got, p[:1000]) {
			t.Fatalf("got %d bytes, want the first 1000", len(got))
		}
		if got := udpRoundTrip(t, c, to, p[:1000], 2000); !bytes.Equal(got, p[:1000]) {
			t.Fatalf("got %d bytes, want 1000", len(got))
		}
		waitFor(t, func() bool { return s.Stats().Replies == 2 })
		if st := s.Stats(); st.Truncated != 1 || h.trunc != 1 || st.Replies != 2 {
			t.Fatalf("stats %+v, handler saw %d truncated", st, h.trunc)
		}
	})
}

// TestServePacketManySenders: many clients at once, each answered.
func TestServePacketManySenders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s, err := e.ServePacket("udp4", "127.0.0.1:0", &udpEcho{}, ServeLoops(4))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		to := serverAddrPort(t, s, "127.0.0.1")
		const senders, each = 64, 50
		var wg sync.WaitGroup
		errs := make(chan error, senders)
		for i := 0; i < senders; i++ {
			c := udpClient(t, "udp4", "127.0.0.1:0")
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 100)
				for j := 0; j < each; j++ {
					msg := fmt.Appendf(nil, "%d-%d", i, j)
					c.WriteToUDPAddrPort(msg, to)
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					n, _, err := c.ReadFromUDPAddrPort(buf)
					if err != nil || !bytes.Equal(buf[:n], msg) {
						errs <- fmt.Errorf("sender %d, %d: %q, %v", i, j, buf[:n], err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return s.Stats().Replies == senders*each })
	})
}

// TestServePacketClose: Close stops the server, and so does the Executor's
// Close; the address is free again afterwards.
func TestServePacketClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s, err := e.ServePacket("udp4", "127.0.0.1:0", &udpEcho{}, ServeLoops(2))
		if err != nil {
			t.Fatal(err)
		}
		addr := s.Addr().String()
		c := udpClient(t, "udp4", "127.0.0.1:0")
		udpRoundTrip(t, c, serverAddrPort(t, s, "127.0.0.1"), []byte("x"), 10)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		<-s.Done()
		pc, err := net.ListenPacket("udp4", addr) // free again
		if err != nil {
			t.Fatal(err)
		}
		pc.Close()

		s2, err := e.ServePacket("udp4", "127.0.0.1:0", &udpEcho{}, ServeLoops(2))
		if err != nil {
			t.Fatal(err)
		}
		udpRoundTrip(t, c, serverAddrPort(t, s2, "127.0.0.1"), []byte("y"), 10)
		e.Close()
		select {
		case <-s2.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Executor.Close did not stop the packet server")
		}
		if _, err := e.ServePacket("udp4", "127.0.0.1:0", &udpEcho{}); err == nil {
			t.Fatal("ServePacket on a closed Executor")
		}
	})
}

// TestServePacketCloseFromHandler: Close from OnPacket returns at once and
// the server stops.
func TestServePacketCloseFromHandler(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		var s *PacketServer
		ready := make(chan struct{})
		s, err := e.ServePacket("udp4", "127.0.0.1:0", PacketHandlerFunc(func(w *PacketWriter, _ netip.AddrPort, _ []byte) {
			<-ready
			s.Close()
			if err := w.WriteTo([]byte("late"), netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, ErrServerClosed) && err != nil {
				t.Errorf("WriteTo after Close: %v", err)
			}
		}), ServeLoops(1))
		if err != nil {
			t.Fatal(err)
		}
		close(ready)
		c := udpClient(t, "udp4", "127.0.0.1:0")
		c.WriteToUDPAddrPort([]byte("stop"), serverAddrPort(t, s, "127.0.0.1"))
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("not stopped")
		}
	})
}

// TestServePacketAddrInUse: an address a socket holds fails with
// EADDRINUSE, as net.ListenPacket fails, SO_REUSEPORT or not.
func TestServePacketAddrInUse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		_, err = e.ServePacket("udp4", pc.LocalAddr().String(), &udpEcho{}, ServeLoops(2))
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("err %v, want EADDRINUSE", err)
		}
		if _, err := e.ServePacket("tcp", "127.0.0.1:0", &udpEcho{}); err == nil {
			t.Fatal("ServePacket on tcp")
		}
		if _, err := e.ServePacket("udp", "127.0.0.1:0", nil); err == nil {
			t.Fatal("ServePacket with a nil handler")
		}
	})
}

// TestServePacketPanic: a handler that panics is counted; the loop goes on.
func TestServePacketPanic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s, err := e.ServePacket("udp4", "127.0.0.1:0", PacketHandlerFunc(func(w *PacketWriter, from netip.AddrPort, data []byte) {
			if string(data) == "boom" {
				panic("boom")
			}
			w.WriteTo(data, from)
		}), ServeLoops(1))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c := udpClient(t, "udp4", "127.0.0.1:0")
		to := serverAddrPort(t, s, "127.0.0.1")
		c.WriteToUDPAddrPort([]byte("boom"), to)
		if b := udpRoundTrip(t, c, to, []byte("ok"), 10); string(b) != "ok" {
			t.Fatalf("got %q", b)
		}
		if st := s.Stats(); st.Panics != 1 {
			t.Fatalf("stats %+v", st)
		}
	}, WithLogger(slogDiscard()))
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// waitFor waits up to 5s for cond (the loops publish once a turn).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
