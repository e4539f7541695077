//go:build linux

package executor

import (
	"io"
	"net"
	"runtime/metrics"
	"syscall"
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
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	st0, sw0 := e.Stats(), schedCount()
	for b.Loop() {
		c.Write(msg)
		io.ReadFull(c, buf)
	}
	st1, sw1 := e.Stats(), schedCount()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	reportCPU(b, &ru0, &ru1)
	per := func(v uint64) float64 { return float64(v) / float64(b.N) }
	b.ReportMetric(per(st1.Enters-st0.Enters), "enters/op")
	b.ReportMetric(per(st1.Submitted-st0.Submitted), "sqes/op")
	b.ReportMetric(per(sw1-sw0), "scheds/op")
}

// schedCount estimates how many times goroutines were scheduled to run: the
// runtime samples one in gTrackingPeriod (8) of them into /sched/latencies.
func schedCount() uint64 {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	var n uint64
	for _, c := range s[0].Value.Float64Histogram().Counts {
		n += c
	}
	return 8 * n
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
