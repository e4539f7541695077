//go:build linux

package executor

import (
	"encoding/json"
	"expvar"
	"io"
	"net"
	"testing"
)

// TestExpvarAfterTraffic: the counters, published with expvar and read back
// through it as JSON by name, on both backends.
func TestExpvarAfterTraffic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		h := &hFuncs{data: func(c *HConn, d []byte) int { c.Write(d); return len(d) }}
		s := hServe(t, e, h, ServeLoops(1))
		name := "kasync.test." + t.Name()
		expvar.Publish(name, e.Var())
		expvar.Publish(name+".serve", s.Var())

		msg := []byte("hello, expvar")
		for range 3 {
			c, err := net.Dial(s.Addr().Network(), s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.Write(msg)
			if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
				t.Fatal(err)
			}
			c.Close()
		}

		var es map[string]any
		if err := json.Unmarshal([]byte(expvar.Get(name).String()), &es); err != nil {
			t.Fatal(err)
		}
		if es["backend"] != string(e.Backend()) {
			t.Fatalf("backend %v, want %s", es["backend"], e.Backend())
		}
		for _, k := range []string{"loops", "submitted", "completed", "cq_overflows", "in_flight"} {
			if _, ok := es[k]; !ok {
				t.Fatalf("executor var has no %q: %v", k, es)
			}
		}
		if e.Backend() == BackendGo && es["backend_reason"] == "" {
			t.Fatalf("go backend without a reason: %v", es)
		}

		var ss map[string]any
		if err := json.Unmarshal([]byte(expvar.Get(name+".serve").String()), &ss); err != nil {
			t.Fatal(err)
		}
		if ss["accepted"].(float64) != 3 || ss["bytes_in"].(float64) != float64(3*len(msg)) || ss["bytes_out"].(float64) != float64(3*len(msg)) {
			t.Fatalf("server var after 3 echoes of %d bytes: %v", len(msg), ss)
		}
		for _, k := range []string{"accept_errors", "resets", "no_bufs", "recv_mode", "conns"} {
			if _, ok := ss[k]; !ok {
				t.Fatalf("server var has no %q: %v", k, ss)
			}
		}
		if _, ok := ss["recv_mode"].(string); !ok {
			t.Fatalf("recv_mode is not a name: %v", ss["recv_mode"])
		}
	})
}
