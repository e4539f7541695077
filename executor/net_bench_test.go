//go:build linux

package executor

import (
	"io"
	"net"
	"testing"
)

// TestNetHotPathAllocs: a round trip (Write, Read on each side) allocates
// nothing once the connections are warm.
func TestNetHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	e := newTestExecutor(t, WithLoops(1))
	_, c, s := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	trip := func() {
		c.Write(msg)
		io.ReadFull(s, buf)
		s.Write(buf)
		io.ReadFull(c, buf)
	}
	trip()
	if n := testing.AllocsPerRun(1000, trip); n > 0 {
		t.Fatalf("%.2f allocations per round trip", n)
	}
}

// BenchmarkNetPingPong: 64-byte round trips over loopback TCP between two
// Conns of one executor, one connection.
func BenchmarkNetPingPong(b *testing.B) {
	e := newTestExecutor(b, WithLoops(1))
	_, c, s := listenAndDial(b, e, "tcp", "127.0.0.1:0")
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		c.Write(msg)
		io.ReadFull(c, buf)
	}
}

// BenchmarkNetPingPongGo is BenchmarkNetPingPong on Go's net, for scale.
func BenchmarkNetPingPongGo(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		c.Write(msg)
		io.ReadFull(c, buf)
	}
}
