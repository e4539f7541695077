package main

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as a server: with testServerEnv set it serves echo
// (flipping a byte if the value is "corrupt") instead of running tests, so
// the harness can start it as it starts the real servers. With -to it is a
// proxy to that upstream instead (one that loses a byte if the value is
// "lossy"), with -udp a UDP echo; it takes its address by -addr or -listen.
const testServerEnv = "KASYNC_BENCH_TEST_SERVER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(testServerEnv); mode != "" {
		testServer(mode)
		return
	}
	os.Exit(m.Run())
}

func testServer(mode string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "")
	listen := fs.String("listen", "", "the address, by examples/proxy's name for the flag")
	to := fs.String("to", "", "be a proxy to this upstream")
	udp := fs.Bool("udp", false, "serve UDP echo")
	fs.Parse(os.Args[1:])
	if *listen != "" {
		*addr = *listen
	}
	if *udp {
		testUDPServer(*addr)
		return
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		if *to != "" {
			go testProxy(c, *to, mode == "lossy")
			continue
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 4096)
			total := 0
			for {
				n, err := c.Read(buf)
				if mode == "corrupt" && total < 500 && total+n >= 500 {
					buf[500-total-1] ^= 1
				}
				total += n
				if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
					return
				}
			}
		}()
	}
}

// testProxy joins c to a new connection to upstream, leaving out byte
// 100000 of what c sends if lossy.
func testProxy(c net.Conn, upstream string, lossy bool) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go io.Copy(c, u)
	if lossy {
		io.CopyN(u, c, 100000)
		io.CopyN(io.Discard, c, 1)
	}
	io.Copy(u, c)
}

// testUDPServer echoes every datagram on addr.
func testUDPServer(addr string) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", pc.LocalAddr())
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			os.Exit(1)
		}
		pc.WriteTo(buf[:n], from)
	}
}

// selfServer is a Server that runs this test binary as its program.
func selfServer(name string, baseline bool) Server {
	return Server{Name: name, Kind: KindEcho, Baseline: baseline, Binary: &Binary{Name: filepath.Base(os.Args[0])}}
}

func TestSuiteEndToEnd(t *testing.T) {
	t.Setenv(testServerEnv, "echo")
	sc := Scenario{Name: "echo-test", Kind: KindEcho, Conns: 4, Size: 64}
	opts := Options{
		Scenarios: []Scenario{sc},
		Servers:   []Server{selfServer("base", true), selfServer("other", false), {Name: "absent", Kind: KindEcho, Binary: &Binary{Name: "absent"}}},
		Runs:      2, Warmup: 50 * time.Millisecond, Duration: 150 * time.Millisecond,
	}
	unavailable := map[string]string{"absent": "not built in this test"}
	prog := newProgress(io.Discard, -1, steps(opts, unavailable))
	s := runSuite(opts, filepath.Dir(os.Args[0]), unavailable, prog)
	prog.close()

	if len(s.Cells) != 3 {
		t.Fatalf("%d cells, want 3", len(s.Cells))
	}
	for _, c := range s.Cells[:2] {
		if c.Status != "" || len(c.Samples) != 2 {
			t.Fatalf("%s: status %q, %d samples", c.Server.Name, c.Status, len(c.Samples))
		}
		if sum := summarize(c, s.Cells[0]); !sum.HasRatio || sum.Throughput <= 0 || sum.P99 < sum.P50 {
			t.Errorf("%s: summary %+v", c.Server.Name, sum)
		}
	}
	if sum := summarize(s.Cells[0], s.Cells[0]); sum.Ratio != 1 {
		t.Errorf("baseline ratio %v, want 1", sum.Ratio)
	}
	if !strings.HasPrefix(s.Cells[2].Status, "not available") {
		t.Errorf("absent server: status %q", s.Cells[2].Status)
	}

	var text bytes.Buffer
	writeText(&text, s)
	for _, want := range []string{"base (baseline)", "1.00x", "other", "absent", "not available", "echo 4x64B"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}
	var svg bytes.Buffer
	if err := writeChart(&svg, s); err != nil {
		t.Fatal(err)
	}
	if err := wellFormed(svg.Bytes()); err != nil {
		t.Errorf("chart is not well-formed XML: %v", err)
	}
	var md strings.Builder
	writeMarkdown(&md, s, "chart.svg")
	if !strings.Contains(md.String(), "| echo 4x64B | base (baseline) |") || !strings.Contains(md.String(), "![") {
		t.Errorf("markdown report:\n%s", md.String())
	}
	t.Log("\n" + text.String())
}

func TestSuiteReportsCorruptingServer(t *testing.T) {
	t.Setenv(testServerEnv, "corrupt")
	opts := Options{
		Scenarios: []Scenario{{Name: "echo-test", Kind: KindEcho, Conns: 2, Size: 64}},
		Servers:   []Server{selfServer("flipper", true)},
		Runs:      2, Duration: 500 * time.Millisecond,
	}
	prog := newProgress(io.Discard, -1, steps(opts, nil))
	s := runSuite(opts, filepath.Dir(os.Args[0]), nil, prog)
	prog.close()
	c := s.Cells[0]
	if len(c.Samples) != 0 || !strings.Contains(c.Status, "echo mismatch") {
		t.Fatalf("a corrupting server got %d samples, status %q", len(c.Samples), c.Status)
	}
	var text bytes.Buffer
	writeText(&text, s)
	if !strings.Contains(text.String(), "failed") || !strings.Contains(text.String(), "echo mismatch") {
		t.Errorf("table does not show the failure:\n%s", text.String())
	}
}

func wellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func TestParseWrk(t *testing.T) {
	out := []byte(`Running 1s test @ http://127.0.0.1:8080/
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.31ms  512.00us   9.12ms   80.00%
    Req/Sec    42.10k     1.20k   44.00k    70.00%
  Latency Distribution
     50%    2.25ms
     75%    2.50ms
     90%    2.90ms
     99%    4.10ms
  42000 requests in 1.00s, 5.13MB read
Requests/sec:  41990.12
Transfer/sec:      5.13MB
`)
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Throughput != 41990.12 || r.P50 != 2250*time.Microsecond || r.P99 != 4100*time.Microsecond || r.Note != "" {
		t.Errorf("%+v", r)
	}
	bad := append(out, "Non-2xx or 3xx responses: 12\n"...)
	if _, err := parseWrk(bad); err == nil {
		t.Error("non-2xx responses not reported")
	}
}

func TestSelectScenarios(t *testing.T) {
	all, err := selectScenarios("", 0, 0)
	if err != nil || len(all) != len(allScenarios) {
		t.Fatalf("%v, %v", all, err)
	}
	echo, err := selectScenarios("echo,http-c100", 10, 128)
	if err != nil || len(echo) != 4 {
		t.Fatalf("%v, %v", echo, err)
	}
	if echo[0].Conns != 10 || echo[0].Size != 128 || echo[3].Size != 0 || echo[0].Title() != "echo 10x128B" {
		t.Errorf("overrides: %+v", echo)
	}
	if _, err := selectScenarios("nope", 0, 0); err == nil {
		t.Error("unknown scenario accepted")
	}
	if got := (Scenario{Kind: KindEcho, Conns: 100, Size: 4096}).Title(); got != "echo 100x4KiB" {
		t.Errorf("title %q", got)
	}
}

func TestProcCPU(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	if cpu := procCPU(os.Getpid()); cpu <= 0 {
		t.Errorf("own CPU time %v after spinning", cpu)
	}
	if cores := readCores(); len(cores) == 0 {
		t.Error("no CPUs in /proc/stat")
	}
}

func TestMedianRange(t *testing.T) {
	if m, lo, hi := medianRange([]float64{3, 1, 2}); m != 2 || lo != 1 || hi != 3 {
		t.Errorf("%v %v %v", m, lo, hi)
	}
	if m, _, _ := medianRange([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("even median %v", m)
	}
}
