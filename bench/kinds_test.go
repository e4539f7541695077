package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kasync-go/kasync/bench/loadgen"
)

// selfProxy is a proxy Server that runs this test binary, taking its
// address by addrFlag, forwarding to the upstream given by -to.
func selfProxy(name string, baseline bool, addrFlag string) Server {
	return Server{Name: name, Kind: KindProxy, Baseline: baseline, Binary: &Binary{Name: filepath.Base(os.Args[0])},
		AddrFlag: addrFlag, UpstreamFlag: "-to"}
}

// selfUpstream makes the test binary the proxies' upstream echo.
func selfUpstream() map[Kind]*Binary {
	return map[Kind]*Binary{KindProxy: {Name: filepath.Base(os.Args[0])}}
}

func runTestSuite(t *testing.T, opts Options) *Suite {
	t.Helper()
	prog := newProgress(io.Discard, -1, steps(opts, nil))
	s := runSuite(opts, filepath.Dir(os.Args[0]), nil, prog)
	prog.close()
	if prog.done != steps(opts, nil) {
		t.Errorf("progress: %d of %d steps", prog.done, steps(opts, nil))
	}
	return s
}

func TestSuiteProxyEndToEnd(t *testing.T) {
	t.Setenv(testServerEnv, "echo")
	rt := Scenario{Name: "proxy-rt", Kind: KindProxy, Conns: 4, Size: 64}
	bulk := Scenario{Name: "proxy-bulk", Kind: KindProxy, Conns: 2, Size: 64 << 10, Bulk: true}
	opts := Options{
		Scenarios: []Scenario{rt, bulk},
		Servers:   []Server{selfProxy("base", true, ""), selfProxy("other", false, "-listen")},
		Runs:      2, Warmup: 50 * time.Millisecond, Duration: 150 * time.Millisecond,
		Rates:     []float64{2000}, // the round trips take it, bulk does not
		Upstreams: selfUpstream(),
	}
	if n := steps(opts, nil); n != 2*2*2+2*2 {
		t.Errorf("%d steps, want 12", n)
	}
	s := runTestSuite(t, opts)
	if len(s.Cells) != 4 {
		t.Fatalf("%d cells, want 4", len(s.Cells))
	}
	for _, c := range s.Cells {
		if c.Status != "" || len(c.Samples) != 2 {
			t.Fatalf("%s %s: status %q, %d samples", c.Scenario.Name, c.Server.Name, c.Status, len(c.Samples))
		}
		for _, x := range c.Samples {
			if c.Scenario.Bulk && (x.Result.Bytes == 0 || x.Result.Requests != 0) || !c.Scenario.Bulk && x.Result.Requests == 0 {
				t.Errorf("%s %s: %d bytes, %d requests", c.Scenario.Name, c.Server.Name, x.Result.Bytes, x.Result.Requests)
			}
		}
		sum := summarize(c, baselineOf(s.Cells, c))
		if !sum.HasRatio || sum.Throughput <= 0 {
			t.Errorf("%s %s: summary %+v", c.Scenario.Name, c.Server.Name, sum)
		}
		if c.Scenario.Bulk {
			// MB/s, from the bytes: not round trips.
			if want := c.Samples[0].Result.BytesPerSecond() / 1e6; c.Scenario.Figure(c.Samples[0].Result) != want {
				t.Errorf("bulk figure %v, want %v MB/s", c.Scenario.Figure(c.Samples[0].Result), want)
			}
			if len(c.Open) != 1 || len(c.Open[0]) != 0 {
				t.Errorf("bulk measured open-loop: %v", c.Open)
			}
		} else if len(c.Open) != 1 || len(c.Open[0]) != 2 {
			t.Errorf("round trips through the proxy: open loop %v", c.Open)
		}
	}
	var text bytes.Buffer
	writeText(&text, s)
	for _, want := range []string{"proxy 4x64B", "proxy bulk c2", "MB/s", "req/s", "base (baseline)", "1.00x",
		"upstream echo server (" + filepath.Base(os.Args[0]) + ")", "pinned to CPU 1", "open loop"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var md strings.Builder
	writeMarkdown(&md, s, "chart.svg")
	if !strings.Contains(md.String(), "| proxy 4x64B | base (baseline) | 2.0k/s |") || strings.Contains(md.String(), "| proxy bulk c2 | base (baseline) | 2.0k/s |") {
		t.Errorf("open-loop table: the round trips belong in it, bulk does not:\n%s", md.String())
	}
	var svg bytes.Buffer
	if err := writeChart(&svg, s); err != nil {
		t.Fatal(err)
	}
	if err := wellFormed(svg.Bytes()); err != nil {
		t.Errorf("chart: %v", err)
	}
	if !strings.Contains(svg.String(), "base for proxy") || !strings.Contains(svg.String(), " MB/s<") {
		t.Errorf("chart lacks the baseline's name or the bulk unit:\n%s", svg.String())
	}
	t.Log("\n" + text.String())
}

func TestSuiteLossyProxyFails(t *testing.T) {
	t.Setenv(testServerEnv, "lossy")
	opts := Options{
		Scenarios: []Scenario{{Name: "proxy-bulk", Kind: KindProxy, Conns: 1, Size: 64 << 10, Bulk: true}},
		Servers:   []Server{selfProxy("loser", true, "")},
		Runs:      1, Duration: 500 * time.Millisecond,
		Upstreams: selfUpstream(),
	}
	s := runTestSuite(t, opts)
	if c := s.Cells[0]; len(c.Samples) != 0 || !strings.Contains(c.Status, "byte 100000 of the stream") {
		t.Fatalf("a proxy that loses a byte: %d samples, status %q", len(c.Samples), c.Status)
	}
}

func TestSuiteProxyWithoutUpstream(t *testing.T) {
	t.Setenv(testServerEnv, "echo")
	opts := Options{
		Scenarios: []Scenario{{Name: "proxy-rt", Kind: KindProxy, Conns: 1, Size: 64}},
		Servers:   []Server{selfProxy("lonely", true, "")},
		Runs:      1, Duration: 100 * time.Millisecond,
	}
	s := runTestSuite(t, opts)
	if c := s.Cells[0]; !strings.Contains(c.Status, "no upstream") {
		t.Fatalf("no upstream available: status %q", c.Status)
	}
}

func TestSuiteUDPEndToEnd(t *testing.T) {
	t.Setenv(testServerEnv, "echo")
	udp := func(name string, baseline bool) Server {
		return Server{Name: name, Kind: KindUDP, Baseline: baseline, Binary: &Binary{Name: filepath.Base(os.Args[0])}, Args: []string{"-udp"}}
	}
	opts := Options{
		Scenarios: []Scenario{{Name: "udp-test", Kind: KindUDP, Conns: 4, Size: 64}},
		Servers:   []Server{udp("base", true), udp("other", false)},
		Runs:      2, Warmup: 50 * time.Millisecond, Duration: 150 * time.Millisecond,
		Rates: []float64{1000}, // UDP has no open loop: not measured
	}
	if n := steps(opts, nil); n != 2*2 {
		t.Errorf("%d steps, want 4", n)
	}
	s := runTestSuite(t, opts)
	for _, c := range s.Cells {
		if c.Status != "" || len(c.Samples) != 2 || len(c.Open[0]) != 0 {
			t.Fatalf("%s: status %q, %d samples, open %v", c.Server.Name, c.Status, len(c.Samples), c.Open)
		}
	}
	var text bytes.Buffer
	writeText(&text, s)
	for _, want := range []string{"udp 4x64B", "dgram/s", "base (baseline)", "1.00x", "closed loop only"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "open loop (fixed") {
		t.Errorf("an open-loop table for UDP:\n%s", text.String())
	}
	t.Log("\n" + text.String())
}

// TestReportResends: UDP's resends are in the row's note, and many of them
// in a warning.
func TestReportResends(t *testing.T) {
	sc := Scenario{Name: "udp-test", Kind: KindUDP, Conns: 4, Size: 64}
	sample := func(requests, resent uint64) Sample {
		return Sample{Result: loadgen.Result{Requests: requests, Resent: resent, Late: 1, Elapsed: time.Second, Latency: new(loadgen.Histogram)}}
	}
	c := &Cell{Scenario: sc, Server: Server{Name: "dropper", Kind: KindUDP, Baseline: true}, Samples: []Sample{sample(10000, 30), sample(10000, 20)}}
	s := &Suite{Cells: []*Cell{c}}
	r := rows(s)[0]
	if want := "50 of 20000 datagrams resent (unanswered for 50ms), 2 late echoes, over 2 runs"; r.status != want {
		t.Errorf("note %q, want %q", r.status, want)
	}
	if r.throughput != "10.0k [10.0k-10.0k] dgram/s" {
		t.Errorf("throughput %q", r.throughput)
	}
	if w := strings.Join(warnings(s), "\n"); !strings.Contains(w, "50 of 20000 datagrams went unanswered") {
		t.Errorf("warnings: %s", w)
	}
}
