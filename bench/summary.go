package main

import (
	"slices"
	"time"
)

// Summary condenses a cell's samples: medians, with the range over runs.
type Summary struct {
	Runs                       int
	Throughput                 float64 // median, in the scenario's unit (Scenario.Unit: req/s, dgram/s, MB/s)
	ThroughputLo, ThroughputHi float64
	P50, P99                   time.Duration // medians over runs
	LoadCPU, ServerCPU         float64       // median share of one core
	PerEnter                   float64       // median completions per io_uring_enter
	ServerCore, LoadCore       float64       // median busy share of each pinned core
	CoresKnown                 bool
	// Ratio is the median over runs of throughput / the baseline's
	// throughput in the same run; HasRatio is false without a baseline.
	Ratio, RatioLo, RatioHi float64
	HasRatio                bool
	// UDP: datagrams sent again and late echoes, over all runs, and the
	// datagrams echoed in them.
	Resent, Late, Requests uint64
}

// summarize condenses c, against base (its scenario's baseline cell, or nil).
func summarize(c, base *Cell) Summary {
	s := Summary{Runs: len(c.Samples)}
	if s.Runs == 0 {
		return s
	}
	var thr, load, server, perEnter, serverCore, loadCore []float64
	var p50, p99 []time.Duration
	for _, x := range c.Samples {
		thr = append(thr, c.Scenario.Figure(x.Result))
		s.Resent += x.Result.Resent
		s.Late += x.Result.Late
		s.Requests += x.Result.Requests
		load = append(load, x.Result.CPUShare())
		if x.Result.Elapsed > 0 {
			server = append(server, x.ServerCPU.Seconds()/x.Result.Elapsed.Seconds())
		}
		perEnter = append(perEnter, x.Result.PerEnter())
		if x.CoresKnown {
			serverCore = append(serverCore, x.ServerCore)
			loadCore = append(loadCore, x.LoadCore)
		}
		p50 = append(p50, x.Result.Latency.Quantile(0.50))
		p99 = append(p99, x.Result.Latency.Quantile(0.99))
	}
	s.Throughput, s.ThroughputLo, s.ThroughputHi = medianRange(thr)
	s.LoadCPU, _, _ = medianRange(load)
	s.ServerCPU, _, _ = medianRange(server)
	s.PerEnter, _, _ = medianRange(perEnter)
	if len(serverCore) > 0 {
		s.CoresKnown = true
		s.ServerCore, _, _ = medianRange(serverCore)
		s.LoadCore, _, _ = medianRange(loadCore)
	}
	s.P50, s.P99 = medianDuration(p50), medianDuration(p99)
	s.Ratio, s.RatioLo, s.RatioHi, s.HasRatio = pairedRatio(c, base)
	return s
}

// pairedRatio returns the median, minimum and maximum over runs of c's
// throughput over other's in the same run; ok is false if there is none
// (other nil or without samples).
func pairedRatio(c, other *Cell) (med, lo, hi float64, ok bool) {
	if other == nil {
		return 0, 0, 0, false
	}
	// Run i of c and run i of other ran next to each other.
	var ratios []float64
	for i := range min(len(c.Samples), len(other.Samples)) {
		if b := other.Scenario.Figure(other.Samples[i].Result); b > 0 {
			ratios = append(ratios, c.Scenario.Figure(c.Samples[i].Result)/b)
		}
	}
	if len(ratios) == 0 {
		return 0, 0, 0, false
	}
	med, lo, hi = medianRange(ratios)
	return med, lo, hi, true
}

// twinOf returns the @base twin of c's server in c's scenario, or nil.
func twinOf(cells []*Cell, c *Cell) *Cell {
	for _, t := range cells {
		if t.Scenario == c.Scenario && t.Server.BaseOf != "" && t.Server.BaseOf == c.Server.Name {
			return t
		}
	}
	return nil
}

// hasBase reports whether the suite ran @base twins.
func hasBase(s *Suite) bool {
	for _, c := range s.Cells {
		if c.Server.BaseOf != "" {
			return true
		}
	}
	return false
}

// baselineOf returns the baseline cell of c's scenario in cells, or nil.
func baselineOf(cells []*Cell, c *Cell) *Cell {
	for _, b := range cells {
		if b.Scenario == c.Scenario && b.Server.Baseline {
			return b
		}
	}
	return nil
}

// medianRange returns the median, minimum and maximum of v (zeros if empty).
func medianRange(v []float64) (med, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	med = v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return med, v[0], v[n-1]
}

func medianDuration(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	m, _, _ := medianRange(f)
	return time.Duration(m)
}

// sustainedShare is how much of the requests due in an open loop's window
// must have been answered in it for the server to have kept up.
const sustainedShare = 0.98

// OpenSummary condenses a cell's open-loop samples at one rate: medians
// over runs, with ranges where they say something.
type OpenSummary struct {
	Runs      int
	Offered   float64 // round trips per second asked for
	Achieved  float64 // median round trips per second answered
	AchLo     float64
	AchHi     float64
	Sustained int // runs in which the server answered sustainedShare of what was due

	P50, P99, P999 time.Duration // medians over runs, latency from the scheduled send

	// CPUPer1k is the server's CPU time per 1,000 round trips (median,
	// with its range over runs); zero when unknown.
	CPUPer1k, CPUPer1kLo, CPUPer1kHi time.Duration
	// CPURatio is the median over runs of CPUPer1k over the baseline's in
	// the same run; HasRatio is false without one.
	CPURatio, CPURatioLo, CPURatioHi float64
	HasRatio                         bool

	LoadCPU float64       // median share of a core the load thread used
	SendLag time.Duration // median over runs of the p99 of how late requests were written
}

// cpuPerRoundTrip returns a sample's server CPU time per round trip, and
// false if it answered none.
func cpuPerRoundTrip(x Sample) (float64, bool) {
	if x.Result.Requests == 0 {
		return 0, false
	}
	return float64(x.ServerCPU) / float64(x.Result.Requests), true
}

// summarizeOpen condenses c's open-loop samples at rate index r, against
// base (its scenario's baseline cell, or nil).
func summarizeOpen(c *Cell, r int, base *Cell) OpenSummary {
	var s OpenSummary
	if r >= len(c.Open) || len(c.Open[r]) == 0 {
		return s
	}
	samples := c.Open[r]
	s.Runs = len(samples)
	s.Offered = samples[0].Result.Offered
	var ach, cpu, load []float64
	var p50, p99, p999, lag []time.Duration
	for _, x := range samples {
		ach = append(ach, x.Result.Throughput())
		if x.Result.Achieved() >= sustainedShare {
			s.Sustained++
		}
		if v, ok := cpuPerRoundTrip(x); ok {
			cpu = append(cpu, 1000*v)
		}
		load = append(load, x.Result.CPUShare())
		p50 = append(p50, x.Result.Latency.Quantile(0.50))
		p99 = append(p99, x.Result.Latency.Quantile(0.99))
		p999 = append(p999, x.Result.Latency.Quantile(0.999))
		if x.Result.SendLag != nil {
			lag = append(lag, x.Result.SendLag.Quantile(0.99))
		}
	}
	s.Achieved, s.AchLo, s.AchHi = medianRange(ach)
	m, lo, hi := medianRange(cpu)
	s.CPUPer1k, s.CPUPer1kLo, s.CPUPer1kHi = time.Duration(m), time.Duration(lo), time.Duration(hi)
	s.LoadCPU, _, _ = medianRange(load)
	s.P50, s.P99, s.P999, s.SendLag = medianDuration(p50), medianDuration(p99), medianDuration(p999), medianDuration(lag)
	s.CPURatio, s.CPURatioLo, s.CPURatioHi, s.HasRatio = pairedCPURatio(c, base, r)
	return s
}

// pairedCPURatio returns the median, minimum and maximum over runs of c's
// server CPU time per round trip over other's in the same run, at rate
// index r; ok is false if there is none.
func pairedCPURatio(c, other *Cell, r int) (med, lo, hi float64, ok bool) {
	if other == nil || r >= len(c.Open) || r >= len(other.Open) {
		return 0, 0, 0, false
	}
	// Run i of c and run i of other ran one after the other.
	var ratios []float64
	for i := range min(len(c.Open[r]), len(other.Open[r])) {
		a, ok1 := cpuPerRoundTrip(c.Open[r][i])
		b, ok2 := cpuPerRoundTrip(other.Open[r][i])
		if ok1 && ok2 && b > 0 {
			ratios = append(ratios, a/b)
		}
	}
	if len(ratios) == 0 {
		return 0, 0, 0, false
	}
	med, lo, hi = medianRange(ratios)
	return med, lo, hi, true
}
