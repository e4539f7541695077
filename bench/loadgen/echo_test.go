package loadgen

import (
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// serveConns serves handle on each connection to a loopback port (closing
// it after), until the test ends, and returns the port's address.
func serveConns(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// startEcho serves echo on a loopback port until the test ends; corruptAt >= 0
// makes it flip the bits of the byte at that offset of each connection's stream.
func startEcho(t *testing.T, corruptAt int) string {
	t.Helper()
	return serveConns(t, func(c net.Conn) {
		buf := make([]byte, 8192)
		pos := 0
		for {
			n, err := c.Read(buf)
			if n > 0 && corruptAt >= pos && corruptAt < pos+n {
				buf[corruptAt-pos] ^= 0xff
			}
			pos += n
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// modes are the load generator's two paths: multishot receives into a
// buffer ring with registered files, and plain single-shot receives.
var modes = []struct {
	name  string
	plain bool
}{{"multishot", false}, {"plain", true}}

func TestEchoCorrectServerPasses(t *testing.T) {
	addr := startEcho(t, -1)
	for _, m := range modes {
		for _, size := range []int{64, 4096, 100} {
			windows := 0
			res, err := Echo(Config{Addr: addr, Conns: 8, Size: size, Warmup: 50 * time.Millisecond, Plain: m.plain,
				Duration: 150 * time.Millisecond, OnWindow: func(bool) { windows++ }})
			if err != nil {
				t.Fatalf("%s, size %d: %v", m.name, size, err)
			}
			if res.Requests == 0 || res.Latency.Count() != res.Requests {
				t.Fatalf("%s, size %d: %d requests, %d latencies", m.name, size, res.Requests, res.Latency.Count())
			}
			if windows != 2 {
				t.Errorf("OnWindow called %d times, want 2", windows)
			}
			if res.Latency.Quantile(0.5) <= 0 || res.Latency.Quantile(0.99) < res.Latency.Quantile(0.5) {
				t.Errorf("latency p50 %v p99 %v", res.Latency.Quantile(0.5), res.Latency.Quantile(0.99))
			}
			t.Logf("%s, size %d: %.0f req/s, p50 %v, p99 %v, load CPU %.0f%%, %.1f completions per enter",
				m.name, size, res.Throughput(), res.Latency.Quantile(0.5), res.Latency.Quantile(0.99), 100*res.CPUShare(), res.PerEnter())
		}
	}
}

func TestEchoCorruptingServerIsCaught(t *testing.T) {
	addr := startEcho(t, 1000)
	for _, m := range modes {
		_, err := Echo(Config{Addr: addr, Conns: 4, Size: 64, Duration: 2 * time.Second, Plain: m.plain})
		if err == nil {
			t.Fatalf("%s: a server that flips a byte passed the echo check", m.name)
		}
		// Byte 1000 of the stream is byte 1000-15*64 = 40 of round 16.
		if !strings.Contains(err.Error(), "echo mismatch at byte 40 of 64") || !strings.Contains(err.Error(), "round 16") {
			t.Fatalf("%s: error does not say where the wrong byte is: %v", m.name, err)
		}
		t.Logf("%s: %v", m.name, err)
	}
}

func TestEchoExtraBytesAreCaught(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // echoes every message twice
				defer c.Close()
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					c.Write(append(buf, buf...))
				}
			}()
		}
	}()
	for _, m := range modes {
		_, err = Echo(Config{Addr: ln.Addr().String(), Conns: 2, Duration: time.Second, Plain: m.plain})
		if err == nil {
			t.Fatalf("%s: no error from a server that echoes twice", m.name)
		}
		t.Logf("%s: %v", m.name, err)
	}
}

func TestEchoServerThatClosesIsReported(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, err = Echo(Config{Addr: ln.Addr().String(), Conns: 2, Duration: time.Second})
	if err == nil {
		t.Fatal("no error from a server that closes every connection")
	}
	t.Log(err)
}

func TestEchoStuckServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // accepted by the kernel, never read
	start := time.Now()
	_, err = Echo(Config{Addr: ln.Addr().String(), Conns: 2, Duration: 5 * time.Second, Stall: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Fatalf("want a stuck-server error, got %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %v to notice", time.Since(start))
	}
}

func TestFillPatternDiffers(t *testing.T) {
	a, b, c := make([]byte, 67), make([]byte, 67), make([]byte, 67)
	fillPattern(a, 1, 1)
	fillPattern(b, 1, 2)
	fillPattern(c, 2, 1)
	for i := 0; i+8 <= len(a); i += 8 {
		if string(a[i:i+8]) == string(b[i:i+8]) || string(a[i:i+8]) == string(c[i:i+8]) {
			t.Fatalf("word at %d repeats across rounds or connections", i)
		}
	}
}

func TestEchoAllocatesNothingPerMessage(t *testing.T) {
	addr := startEcho(t, -1)
	for _, m := range modes {
		var before, after runtime.MemStats
		res, err := Echo(Config{Addr: addr, Conns: 16, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond, Plain: m.plain,
			OnWindow: func(open bool) {
				if open {
					runtime.ReadMemStats(&before)
				} else {
					runtime.ReadMemStats(&after)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		// The in-process server may allocate a little; the load, per message, nothing.
		allocs := after.Mallocs - before.Mallocs
		if res.Requests < 1000 || float64(allocs) > 0.01*float64(res.Requests) {
			t.Errorf("%s: %d allocations for %d round trips", m.name, allocs, res.Requests)
		}
		t.Logf("%s: %d allocations for %d round trips", m.name, allocs, res.Requests)
	}
}
