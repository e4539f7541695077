package loadgen

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func startHTTP(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestHTTPHelloPasses(t *testing.T) {
	addr := startHTTP(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(HelloBody))
	})
	for _, m := range modes {
		res, err := HTTP(Config{Addr: addr, Conns: 8, Warmup: 50 * time.Millisecond, Duration: 150 * time.Millisecond, Plain: m.plain})
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if res.Requests == 0 {
			t.Fatalf("%s: no requests", m.name)
		}
		t.Logf("%s: %.0f req/s, p50 %v, p99 %v", m.name, res.Throughput(), res.Latency.Quantile(0.5), res.Latency.Quantile(0.99))
	}
}

func TestHTTPChunkedPasses(t *testing.T) {
	addr := startHTTP(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(HelloBody[:5]))
		w.(http.Flusher).Flush() // the rest goes out as a second chunk
		w.Write([]byte(HelloBody[5:]))
	})
	if _, err := HTTP(Config{Addr: addr, Conns: 2, Duration: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPWrongBodyIsCaught(t *testing.T) {
	addr := startHTTP(t, func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("Hello, World?")) })
	_, err := HTTP(Config{Addr: addr, Conns: 2, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "body") {
		t.Fatalf("want a body error, got %v", err)
	}
}

func TestHTTPWrongStatusIsCaught(t *testing.T) {
	addr := startHTTP(t, http.NotFound)
	_, err := HTTP(Config{Addr: addr, Conns: 2, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("want a status error, got %v", err)
	}
}

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		full    bool // b holds the whole response and nothing else
		wantErr string
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!", true, ""},
		{"HTTP/1.1 200 OK\r\ncontent-length:13\r\n\r\nHello, World!", true, ""},
		{"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello", false, ""},
		{"HTTP/1.1 200 OK\r\nContent-Len", false, ""},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8\r\n, World!\r\n0\r\n\r\n", true, ""},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\nHello, World!\r\n0\r\n", false, ""},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHellx\r\n", false, "chunk"},
		{"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", false, "status"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World?", false, "body"},
		{"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", false, "neither"},
		{"SMTP\r\n\r\n", false, "status line"},
	} {
		n, err := parseResponse([]byte(tc.in), HelloBody)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		want := 0
		if tc.full {
			want = len(tc.in)
		}
		if err != nil || n != want {
			t.Errorf("%q: %d, %v; want %d", tc.in, n, err, want)
		}
	}
}

func TestParseResponseAllocatesNothing(t *testing.T) {
	b := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	if a := testing.AllocsPerRun(100, func() { parseResponse(b, HelloBody) }); a != 0 {
		t.Errorf("parseResponse allocates %v times", a)
	}
}
