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

func TestSuiteOpenLoopEndToEnd(t *testing.T) {
	t.Setenv(testServerEnv, "echo")
	sc := Scenario{Name: "echo-test", Kind: KindEcho, Conns: 4, Size: 64}
	opts := Options{
		Scenarios: []Scenario{sc},
		Servers:   []Server{selfServer("base", true), selfServer("other", false)},
		Runs:      2, Warmup: 50 * time.Millisecond, Duration: 150 * time.Millisecond,
		Rates: []float64{2000, 4000},
	}
	prog := newProgress(io.Discard, -1, steps(opts, nil))
	s := runSuite(opts, filepath.Dir(os.Args[0]), nil, prog)
	prog.close()
	if prog.done != steps(opts, nil) || steps(opts, nil) != 2*2*3 {
		t.Errorf("progress: %d of %d steps", prog.done, steps(opts, nil))
	}
	for _, c := range s.Cells {
		if c.Status != "" || len(c.Samples) != 2 || len(c.Open) != 2 || len(c.Open[0]) != 2 || len(c.Open[1]) != 2 {
			t.Fatalf("%s: status %q, %d closed-loop samples, open %v", c.Server.Name, c.Status, len(c.Samples), len(c.Open))
		}
		for r, rate := range opts.Rates {
			sum := summarizeOpen(c, r, s.Cells[0])
			if sum.Offered != rate || sum.Achieved <= 0 || sum.P999 < sum.P99 || sum.P99 < sum.P50 || !sum.HasRatio {
				t.Errorf("%s at %v: %+v", c.Server.Name, rate, sum)
			}
			for _, x := range c.Open[r] {
				if x.Result.Offered != rate || x.Result.Latency.Count() != x.Result.Requests {
					t.Errorf("%s at %v: sample %+v", c.Server.Name, rate, x.Result)
				}
			}
		}
	}
	var text bytes.Buffer
	writeText(&text, s)
	for _, want := range []string{"open loop", "p99.9", "2.0k/s", "4.0k/s", "server CPU ms/1k RT"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var md strings.Builder
	writeMarkdown(&md, s, "")
	for _, want := range []string{"Open loop", "| echo 4x64B | base (baseline) | 2.0k/s |", "| echo 4x64B | other | 4.0k/s |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	t.Log("\n" + text.String())
}

// openSample is an open-loop sample: requests answered of scheduled, and
// the server's CPU time over the window.
func openSample(rate float64, requests, scheduled uint64, cpu time.Duration) Sample {
	h := new(loadgen.Histogram)
	for range requests {
		h.Record(100 * time.Microsecond)
	}
	return Sample{ServerCPU: cpu, Result: loadgen.Result{Requests: requests, Scheduled: scheduled, Offered: rate,
		Elapsed: time.Second, Latency: h, SendLag: new(loadgen.Histogram)}}
}

func TestOpenSummaryAccounting(t *testing.T) {
	base := &Cell{Server: Server{Name: "net", Baseline: true}, Open: [][]Sample{{
		openSample(20000, 20000, 20000, 400*time.Millisecond), // 20 ms per 1k
		openSample(20000, 20000, 20000, 500*time.Millisecond), // 25
		openSample(20000, 20000, 20000, 300*time.Millisecond), // 15
	}}}
	fast := &Cell{Server: Server{Name: "kasync-conn"}, Open: [][]Sample{{
		openSample(20000, 20000, 20000, 200*time.Millisecond), // 10 ms per 1k: 0.5 of the baseline's run
		openSample(20000, 19000, 20000, 190*time.Millisecond), // 10: 0.4; not sustained (95%)
		openSample(20000, 19600, 20000, 147*time.Millisecond), // 7.5: 0.5; sustained (98%)
	}}}
	sum := summarizeOpen(fast, 0, base)
	if sum.Runs != 3 || sum.Offered != 20000 || sum.Sustained != 2 {
		t.Errorf("runs %d offered %v sustained %d", sum.Runs, sum.Offered, sum.Sustained)
	}
	if sum.Achieved != 19600 || sum.AchLo != 19000 || sum.AchHi != 20000 {
		t.Errorf("achieved %v [%v-%v]", sum.Achieved, sum.AchLo, sum.AchHi)
	}
	if sum.CPUPer1k != 10*time.Millisecond || sum.CPUPer1kLo != 7500*time.Microsecond || sum.CPUPer1kHi != 10*time.Millisecond {
		t.Errorf("CPU per 1k %v [%v-%v]", sum.CPUPer1k, sum.CPUPer1kLo, sum.CPUPer1kHi)
	}
	if !sum.HasRatio || sum.CPURatio != 0.5 || sum.CPURatioLo != 0.4 || sum.CPURatioHi != 0.5 {
		t.Errorf("ratio %v [%v-%v] %v", sum.CPURatio, sum.CPURatioLo, sum.CPURatioHi, sum.HasRatio)
	}
	if sum.P50 != sum.P999 || sum.P50 < 96*time.Microsecond || sum.P50 > 104*time.Microsecond {
		t.Errorf("p50 %v p99.9 %v", sum.P50, sum.P999)
	}
	if self := summarizeOpen(base, 0, base); self.CPURatio != 1 {
		t.Errorf("baseline's own ratio %v", self.CPURatio)
	}
	if none := summarizeOpen(fast, 1, base); none.Runs != 0 || none.HasRatio {
		t.Errorf("a rate not measured: %+v", none)
	}

	// With a @base twin, the table has its column, the twin's ratio in it.
	sc := Scenario{Name: "echo-test", Kind: KindEcho, Conns: 100, Size: 64}
	twin := &Cell{Server: Server{Name: "kasync-conn@base", BaseOf: "kasync-conn"}, Open: [][]Sample{{
		openSample(20000, 20000, 20000, 400*time.Millisecond),
		openSample(20000, 19000, 20000, 380*time.Millisecond),
		openSample(20000, 20000, 20000, 300*time.Millisecond),
	}}}
	for _, c := range []*Cell{base, fast, twin} {
		c.Scenario = sc
	}
	s := &Suite{Opts: Options{Rates: []float64{20000}}, Cells: []*Cell{base, fast, twin}}
	rows := openRows(s)
	head := openHeader(true)
	if len(rows) != 3 || len(rows[1]) != len(head) {
		t.Fatalf("rows %q for header %q", rows, head)
	}
	col := func(name string) int {
		for i, h := range head {
			if strings.HasPrefix(h, name) {
				return i
			}
		}
		t.Fatalf("no column %q in %q", name, head)
		return -1
	}
	if got := rows[1][col("CPU/RT vs @base")]; got != "0.500x [0.500-0.500]" {
		t.Errorf("vs @base %q", got)
	}
	if got := rows[1][col("server CPU")]; got != "10.00 [7.50-10.00]" {
		t.Errorf("CPU per 1k %q", got)
	}
	if got := rows[1][col("sustained")]; got != "2/3 runs" {
		t.Errorf("sustained %q", got)
	}
	if got := rows[0][col("CPU/RT vs baseline")]; got != "1.00x [1.00-1.00]" {
		t.Errorf("baseline's ratio %q", got)
	}
}

func TestParseRates(t *testing.T) {
	got, err := parseRates("20000, 40k,1.5M")
	if err != nil || len(got) != 3 || got[0] != 20000 || got[1] != 40000 || got[2] != 1.5e6 {
		t.Errorf("%v, %v", got, err)
	}
	if got, err := parseRates(""); got != nil || err != nil {
		t.Errorf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"fast", "0", "-5", "20000,", "1e400"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
