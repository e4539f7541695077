package loadgen

import (
	"net"
	"strings"
	"testing"
	"time"
)

// startUDPEcho serves UDP echo on a loopback port until the test ends. Of
// each run of every datagrams, it drops the first (drop), sends it back
// twice (dup) or flips its byte 20 (corrupt); every 0 means never.
func startUDPEcho(t *testing.T, every int, what string) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for n := 0; ; n++ {
			k, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if every > 0 && n%every == every-1 {
				switch what {
				case "drop":
					continue
				case "dup":
					pc.WriteToUDPAddrPort(buf[:k], from)
				case "corrupt":
					buf[20] ^= 1
				}
			}
			pc.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	return pc.LocalAddr().String()
}

func TestUDPCorrectServerPasses(t *testing.T) {
	addr := startUDPEcho(t, 0, "")
	for _, m := range modes {
		for _, size := range []int{64, 1024} {
			windows := 0
			var closed time.Time
			res, err := UDP(Config{Addr: addr, Conns: 8, Size: size, Warmup: 50 * time.Millisecond, Duration: 150 * time.Millisecond,
				Plain: m.plain, OnWindow: func(bool) { windows++; closed = time.Now() }})
			if err != nil {
				t.Fatalf("%s, size %d: %v", m.name, size, err)
			}
			// A shutdown does not end a UDP socket's multishot receive:
			// the teardown must cancel it rather than wait it out.
			if took := time.Since(closed); took > time.Second {
				t.Errorf("%s, size %d: the teardown took %v", m.name, size, took)
			}
			if res.Requests == 0 || res.Latency.Count() != res.Requests || res.Completions == 0 || windows != 2 {
				t.Fatalf("%s, size %d: %d datagrams, %d latencies, %d completions, %d window calls", m.name, size, res.Requests, res.Latency.Count(), res.Completions, windows)
			}
			t.Logf("%s, size %d: %.0f datagrams/s, p50 %v, p99 %v, %d resent, %d late, load CPU %.0f%%, %.1f completions per enter",
				m.name, size, res.Throughput(), res.Latency.Quantile(0.5), res.Latency.Quantile(0.99), res.Resent, res.Late, 100*res.CPUShare(), res.PerEnter())
		}
	}
}

func TestUDPLostDatagramsAreSentAgain(t *testing.T) {
	addr := startUDPEcho(t, 50, "drop")
	for _, m := range modes {
		res, err := UDP(Config{Addr: addr, Conns: 4, Size: 64, Duration: 300 * time.Millisecond, Resend: 10 * time.Millisecond, Plain: m.plain})
		if err != nil {
			t.Fatalf("%s: a lossy server hung or failed the run: %v", m.name, err)
		}
		if res.Resent == 0 || res.Requests == 0 {
			t.Fatalf("%s: one datagram in 50 dropped, %d resent, %d answered", m.name, res.Resent, res.Requests)
		}
		// A loss costs about the resend timeout, in the tail.
		if p99 := res.Latency.Quantile(0.999); p99 < 5*time.Millisecond {
			t.Errorf("%s: p99.9 %v: the losses' wait is not in the latency", m.name, p99)
		}
		t.Logf("%s: %d answered, %d resent, %d late, p50 %v, p99.9 %v", m.name, res.Requests, res.Resent, res.Late, res.Latency.Quantile(0.5), res.Latency.Quantile(0.999))
	}
}

func TestUDPDuplicatesAreCounted(t *testing.T) {
	addr := startUDPEcho(t, 10, "dup")
	res, err := UDP(Config{Addr: addr, Conns: 4, Size: 64, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Late == 0 {
		t.Fatalf("one datagram in 10 echoed twice, %d late echoes counted", res.Late)
	}
}

func TestUDPCorruptingServerIsCaught(t *testing.T) {
	addr := startUDPEcho(t, 100, "corrupt")
	for _, m := range modes {
		_, err := UDP(Config{Addr: addr, Conns: 4, Size: 64, Duration: 2 * time.Second, Plain: m.plain})
		if err == nil || !strings.Contains(err.Error(), "echo mismatch at byte 20 of 64") {
			t.Fatalf("%s: a server that flips a byte was not caught: %v", m.name, err)
		}
		t.Logf("%s: %v", m.name, err)
	}
}

func TestUDPNoServerFails(t *testing.T) {
	// A port nobody listens on: the kernel answers port unreachable.
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	start := time.Now()
	_, err = UDP(Config{Addr: dead, Conns: 2, Duration: 200 * time.Millisecond, Stall: time.Second})
	if err == nil {
		t.Fatal("UDP load against a closed port passed")
	}
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if _, err := UDP(Config{Addr: dead, Size: 4}); err == nil || !strings.Contains(err.Error(), "at least 8") {
		t.Errorf("4-byte datagrams: %v", err)
	}
}
