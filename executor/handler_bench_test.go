//go:build linux

package executor

import (
	"io"
	"net"
	"testing"
)

// The fast path allocates nothing per message once a connection's buffers
// and op slots exist: measured over whole round trips, client included
// (Go's net.Conn Read and Write allocate nothing either).
func TestServeEchoAllocsNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	e := newTestExecutor(t)
	for _, mode := range hModes {
		t.Run(mode.String(), func(t *testing.T) {
			s := hServe(t, e, &hFuncs{}, ServeLoops(1), ServeRecvMode(mode))
			c := hDial(t, s)
			msg, buf := make([]byte, 64), make([]byte, 64)
			roundTrip := func() {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Fatal(err)
				}
			}
			for range 1000 { // warm up: slots, buffers
				roundTrip()
			}
			if a := testing.AllocsPerRun(2000, roundTrip); a != 0 {
				t.Fatalf("%v allocations per echoed message", a)
			}
		})
	}
}

// BenchmarkServeEcho64 is 64-byte ping-pong over loopback against one loop,
// with GOMAXPROCS client connections; allocs/op counts both sides.
func BenchmarkServeEcho64(b *testing.B) { benchServeEcho64(b) }

// benchServeEcho64 is BenchmarkServeEcho64 with more options.
func benchServeEcho64(b *testing.B, opts ...ServeOption) {
	e := newTestExecutor(b)
	s := hServe(b, e, &hFuncs{}, append([]ServeOption{ServeLoops(1)}, opts...)...)
	b.ReportAllocs()
	b.SetBytes(64)
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		msg, buf := make([]byte, 64), make([]byte, 64)
		for pb.Next() {
			if _, err := c.Write(msg); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
