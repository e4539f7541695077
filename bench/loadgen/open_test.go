package loadgen

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestScheduleReleasesEverySendOnce steps a fake clock through a window in
// uneven steps and checks that the schedule makes each send due exactly
// once, at or after its time and no later than the first step after it, in
// the right count overall and per connection.
func TestScheduleReleasesEverySendOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		rate   float64
		conns  int
		tick   time.Duration
		window time.Duration
		want   uint64 // sends due in [start, start+window]
	}{
		{20000, 100, 0, 2 * time.Second, 40001},
		{40000, 1000, 0, time.Second, 40001},
		{1000, 3, 0, 10 * time.Millisecond, 11},
		{333, 7, 0, 3 * time.Second, 1000},
		{20000, 100, 100 * time.Microsecond, 2 * time.Second, 40001},
		{40000, 100, 100 * time.Microsecond, 2*time.Second + 50*time.Microsecond, 80001}, // the last tick's not yet due
		{333, 7, 100 * time.Microsecond, 3 * time.Second, 1000},
	} {
		s := schedule{start: 5 * time.Second, rate: tc.rate, conns: tc.conns, tick: tc.tick}
		perConn := make([]uint64, tc.conns)
		var issued uint64
		now := s.start - time.Millisecond
		for now < s.start+tc.window {
			now = min(now+time.Duration(rng.Int64N(int64(300*time.Microsecond))), s.start+tc.window)
			for due := s.due(now); issued < due; issued++ {
				at := s.at(issued)
				if at > now {
					t.Fatalf("rate %v: send %d due at %v released at %v, early", tc.rate, issued, at, now)
				}
				if tc.tick > 0 && ((at-s.start)%tc.tick != 0 || at < s.start+s.nominal(issued) || at >= s.start+s.nominal(issued)+tc.tick) {
					t.Fatalf("rate %v: send %d meant for %v due at %v, not the tick boundary after", tc.rate, issued, s.nominal(issued), at-s.start)
				}
				c := s.conn(issued)
				if got := s.sendAt(c, perConn[c]); got != at {
					t.Fatalf("rate %v: send %d is conn %d's #%d, due %v by sendAt, %v by at", tc.rate, issued, c, perConn[c], got, at)
				}
				perConn[c]++
			}
			if s.at(issued) <= now {
				t.Fatalf("rate %v: send %d due at %v not released at %v", tc.rate, issued, s.at(issued), now)
			}
		}
		if issued != tc.want {
			t.Errorf("rate %v, %v: %d sends, want %d", tc.rate, tc.window, issued, tc.want)
		}
		lo, hi := tc.want/uint64(tc.conns), (tc.want+uint64(tc.conns)-1)/uint64(tc.conns)
		for c, n := range perConn {
			if n < lo || n > hi {
				t.Errorf("rate %v: conn %d sent %d, want %d..%d", tc.rate, c, n, lo, hi)
			}
		}
	}
}

func TestScheduleDueAgreesWithAt(t *testing.T) {
	for _, rate := range []float64{1, 333.3, 20000, 1e6 / 3, 1e7} {
		s := schedule{start: time.Second, rate: rate, conns: 10}
		if s.due(s.start-1) != 0 || s.due(s.start) != 1 {
			t.Errorf("rate %v: due before start %d, at start %d", rate, s.due(s.start-1), s.due(s.start))
		}
		for k := uint64(0); k < 100000; k += 1 + k/7 {
			if s.due(s.at(k)) != k+1 || (s.at(k) > s.at(k-1) && k > 0 && s.due(s.at(k)-1) != k) {
				t.Fatalf("rate %v: send %d at %v: due there %d, just before %d", rate, k, s.at(k), s.due(s.at(k)), s.due(s.at(k)-1))
			}
		}
	}
}

// TestScheduleTickDueAgreesWithAt: with a tick, the sends due at a tick
// boundary are those meant for up to it, and none is due just before.
func TestScheduleTickDueAgreesWithAt(t *testing.T) {
	for _, rate := range []float64{333.3, 20000, 1e6 / 3} {
		s := schedule{start: time.Second, rate: rate, conns: 10, tick: 100 * time.Microsecond}
		for k := uint64(0); k < 100000; k += 1 + k/7 {
			at := s.at(k)
			if d := s.due(at); d < k+1 || s.nominal(d) <= at-s.start || s.due(at-1) > k {
				t.Fatalf("rate %v: send %d at %v: due there %d, just before %d", rate, k, at, d, s.due(at-1))
			}
		}
	}
}

func TestOpenLoopEcho(t *testing.T) {
	addr := startEcho(t, -1)
	for _, m := range modes {
		for _, size := range []int{64, 4096} {
			windows := 0
			cfg := Config{Addr: addr, Conns: 8, Size: size, Rate: 4000, Warmup: 50 * time.Millisecond,
				Duration: 200 * time.Millisecond, Plain: m.plain, OnWindow: func(bool) { windows++ }}
			if size == 4096 {
				cfg.Tick = 100 * time.Microsecond
			}
			res, err := Echo(cfg)
			if err != nil {
				t.Fatalf("%s, size %d: %v", m.name, size, err)
			}
			checkOpenResult(t, m.name, cfg, res)
			if windows != 2 {
				t.Errorf("OnWindow called %d times, want 2", windows)
			}
		}
	}
}

// checkOpenResult checks an open loop's accounting: the figures that follow
// from the schedule and the counts, whatever the timing.
func checkOpenResult(t *testing.T, name string, cfg Config, res Result) {
	t.Helper()
	if res.Requests == 0 || res.Latency.Count() != res.Requests {
		t.Fatalf("%s: %d requests, %d latencies", name, res.Requests, res.Latency.Count())
	}
	if res.Offered != cfg.Rate {
		t.Errorf("%s: offered %v, want %v", name, res.Offered, cfg.Rate)
	}
	// The scheduled count is the schedule's over the window: rate times
	// its length, give or take the send at either edge.
	if want := cfg.Rate * res.Elapsed.Seconds(); float64(res.Scheduled) < want-1 || float64(res.Scheduled) > want+1 {
		t.Errorf("%s: %d requests scheduled in %v at %v/s", name, res.Scheduled, res.Elapsed, cfg.Rate)
	}
	if res.SendLag.Count() == 0 || res.SendLag.Count() > res.Scheduled+uint64(cfg.Conns)*uint64(openDepth(cfg.Size)) {
		t.Errorf("%s: %d sends timed, %d scheduled", name, res.SendLag.Count(), res.Scheduled)
	}
	t.Logf("%s: offered %.0f/s, answered %d of %d due (%.3f), %d outstanding, p50 %v p99 %v p99.9 %v, send lag p99 %v, load CPU %.0f%%, %.1f per enter",
		name, res.Offered, res.Requests, res.Scheduled, res.Achieved(), res.Outstanding, res.Latency.Quantile(0.5), res.Latency.Quantile(0.99),
		res.Latency.Quantile(0.999), res.SendLag.Quantile(0.99), 100*res.CPUShare(), res.PerEnter())
}

// TestOpenLoopSendsWithoutWaiting runs against a server that answers
// nothing on a connection until it has 5 requests: a closed loop would
// stall, the open loop sends on schedule. The first reply cannot come
// before the fifth request was due, 4 periods after the first, and its
// latency counts from the first's scheduled time, so the largest latency is
// at least that.
func TestOpenLoopSendsWithoutWaiting(t *testing.T) {
	const size, hold = 64, 5
	addr := serveConns(t, func(c net.Conn) {
		first := make([]byte, hold*size)
		if _, err := io.ReadFull(c, first); err != nil {
			return
		}
		if _, err := c.Write(first); err != nil {
			return
		}
		io.Copy(c, c)
	})
	for _, m := range modes {
		cfg := Config{Addr: addr, Conns: 2, Size: size, Rate: 1000, Duration: 100 * time.Millisecond, Plain: m.plain}
		res, err := Echo(cfg)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		checkOpenResult(t, m.name, cfg, res)
		period := time.Duration(1e9 / cfg.Rate * float64(cfg.Conns)) // between one connection's requests
		if res.Latency.Max() < (hold-1)*period {
			t.Errorf("%s: largest latency %v, but the first reply came after request %d was due, %v after the first", m.name, res.Latency.Max(), hold, (hold-1)*period)
		}
	}
}

func TestOpenLoopCorruptingServerIsCaught(t *testing.T) {
	addr := startEcho(t, 1000)
	for _, m := range modes {
		_, err := Echo(Config{Addr: addr, Conns: 4, Size: 64, Rate: 4000, Duration: 2 * time.Second, Plain: m.plain})
		// Byte 1000 of the stream is byte 40 of request 16.
		if err == nil || !strings.Contains(err.Error(), "round 16: echo mismatch at byte 40 of 64") {
			t.Fatalf("%s: want the mismatch at byte 40 of round 16, got %v", m.name, err)
		}
		t.Logf("%s: %v", m.name, err)
	}
}

func TestOpenLoopHTTP(t *testing.T) {
	addr := startHTTP(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(HelloBody))
	})
	for _, m := range modes {
		cfg := Config{Addr: addr, Conns: 4, Rate: 2000, Tick: 100 * time.Microsecond, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond, Plain: m.plain}
		res, err := HTTP(cfg)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		checkOpenResult(t, m.name, cfg, res)
	}
}

// TestHTTPConsumePipelined feeds two and a half responses in uneven pieces.
func TestHTTPConsumePipelined(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n" + HelloBody
	stream := resp + resp + resp[:20]
	c := &conn{buf: make([]byte, 2*httpBufSize)}
	total := 0
	for _, cut := range [][2]int{{0, 7}, {7, len(resp) + 3}, {len(resp) + 3, len(stream)}} {
		n, err := httpProto{}.consume(c, []byte(stream[cut[0]:cut[1]]))
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 2 || c.got != 20 {
		t.Errorf("%d responses, %d bytes pending; want 2, 20", total, c.got)
	}
}
