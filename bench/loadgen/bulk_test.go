package loadgen

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestBulkCorrectServerPasses(t *testing.T) {
	addr := startEcho(t, -1)
	for _, m := range modes {
		for _, conns := range []int{1, 4} {
			windows := 0
			res, err := Bulk(Config{Addr: addr, Conns: conns, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond,
				Plain: m.plain, OnWindow: func(bool) { windows++ }})
			if err != nil {
				t.Fatalf("%s, %d conns: %v", m.name, conns, err)
			}
			if res.Bytes < 1<<20 || res.Requests != 0 || res.Completions == 0 || windows != 2 {
				t.Fatalf("%s, %d conns: %d bytes, %d requests, %d completions, %d window calls", m.name, conns, res.Bytes, res.Requests, res.Completions, windows)
			}
			t.Logf("%s, %d conns: %.0f MB/s, load CPU %.0f%%, %.1f completions per enter",
				m.name, conns, res.BytesPerSecond()/1e6, 100*res.CPUShare(), res.PerEnter())
		}
	}
}

func TestBulkCorruptingServerIsCaught(t *testing.T) {
	addr := startEcho(t, 300000)
	for _, m := range modes {
		_, err := Bulk(Config{Addr: addr, Conns: 2, Duration: 2 * time.Second, Plain: m.plain})
		if err == nil || !strings.Contains(err.Error(), "byte 300000 of the stream") {
			t.Fatalf("%s: a server that flips byte 300000 was not caught there: %v", m.name, err)
		}
		t.Logf("%s: %v", m.name, err)
	}
}

// startLossyEcho serves echo on a loopback port that leaves out the byte at
// offset drop of each connection's stream.
func startLossyEcho(t *testing.T, drop int) string {
	t.Helper()
	return serveConns(t, func(c net.Conn) {
		buf := make([]byte, 8192)
		pos := 0
		for {
			n, err := c.Read(buf)
			out := buf[:n]
			if drop >= pos && drop < pos+n {
				out = append(out[:drop-pos:drop-pos], buf[drop-pos+1:n]...)
			}
			pos += n
			if _, werr := c.Write(out); werr != nil || err != nil {
				return
			}
		}
	})
}

func TestBulkLossyServerIsCaught(t *testing.T) {
	addr := startLossyEcho(t, 100001)
	_, err := Bulk(Config{Addr: addr, Conns: 1, Duration: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "byte 100001 of the stream") {
		t.Fatalf("a server that drops byte 100001 was not caught there: %v", err)
	}
	t.Log(err)
}

func TestBulkNoOpenLoop(t *testing.T) {
	addr := startEcho(t, -1)
	if _, err := Bulk(Config{Addr: addr, Rate: 1000, Duration: 100 * time.Millisecond}); err == nil {
		t.Fatal("Bulk took an open-loop rate")
	}
}

func TestStreamPattern(t *testing.T) {
	seed := streamSeed(3)
	b := make([]byte, 4096)
	fillStream(b, seed, 8192)
	for i := range b {
		if b[i] != streamByte(seed, 8192+uint64(i)) {
			t.Fatalf("fillStream and streamByte disagree at %d", i)
		}
	}
	// Any slice of the stream checks at its own offset, and at no other.
	for _, cut := range [][2]int{{0, 4096}, {3, 4000}, {5, 6}, {1000, 1023}} {
		part := b[cut[0]:cut[1]]
		if i := checkStream(part, seed, 8192+uint64(cut[0])); i >= 0 {
			t.Errorf("slice %v: mismatch at %d", cut, i)
		}
		if i := checkStream(part, seed, 8192+uint64(cut[0])+1); i < 0 {
			t.Errorf("slice %v passed one byte off", cut)
		}
		if i := checkStream(part, streamSeed(4), 8192+uint64(cut[0])); len(part) >= 8 && (i < 0 || i >= 8) {
			t.Errorf("slice %v: another connection's stream differs first at %d, want within the first word", cut, i)
		}
	}
	c := append([]byte(nil), b...)
	c[2049] ^= 0x10
	if i := checkStream(c[1:], seed, 8193); i != 2048 {
		t.Errorf("flipped byte found at %d, want 2048", i)
	}
}

// startProxy forwards each connection on a loopback port to upstream, an
// io.Copy each way, until the test ends.
func startProxy(t *testing.T, upstream string) string {
	t.Helper()
	return serveConns(t, func(c net.Conn) {
		u, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		defer u.Close()
		go io.Copy(u, c)
		io.Copy(c, u)
	})
}

// TestBulkThroughProxyFlowsAtOnce: unbounded, 16 streams through a proxy
// filled megabytes of socket buffers before the first byte came back, and
// a short window saw nothing.
func TestBulkThroughProxyFlowsAtOnce(t *testing.T) {
	addr := startProxy(t, startEcho(t, -1))
	res, err := Bulk(Config{Addr: addr, Conns: 16, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes < 16*BulkAhead {
		t.Fatalf("%d bytes echoed in the first %v", res.Bytes, res.Elapsed)
	}
	t.Logf("%.0f MB/s from the start", res.BytesPerSecond()/1e6)
}
