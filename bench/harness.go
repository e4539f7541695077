package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/kasync-go/kasync/bench/loadgen"
)

// Options say how the suite runs.
type Options struct {
	Scenarios []Scenario
	Servers   []Server
	Runs      int           // measurements of each server in each scenario
	Warmup    time.Duration // load before each measured window
	Duration  time.Duration // each measured window
	Wrk       time.Duration // wrk's run per HTTP server, if wrk is installed (0: never)
	Pin       bool          // servers on serverCPU (the suite pins itself to loadCPU)
	Plain     bool          // the load generator without multishot receives and registered files
	Base      string        // the -base revision the @base twins are built from ("" without -base)
	Rates     []float64     // open-loop rates (round trips per second) measured besides the closed loop's peak
	Tick      time.Duration // the open loop's sends go out in batches, once per tick (0: each at its own time)

	// Upstreams are the upstream each kind's subjects forward to
	// (pickUpstreams), for the kinds that have one.
	Upstreams map[Kind]*Binary
}

// pickUpstreams returns, for each kind of the servers that forwards to an
// upstream, the first of its upstreams that is available; a kind none of
// whose upstreams is has none.
func pickUpstreams(list []Server, unavailable map[string]string) map[Kind]*Binary {
	out := map[Kind]*Binary{}
	for _, s := range list {
		if _, done := out[s.Kind]; done {
			continue
		}
		for _, b := range upstreams[s.Kind] {
			if _, no := unavailable[b.Name]; !no {
				out[s.Kind] = b
				break
			}
		}
	}
	return out
}

// Sample is one measurement of one server.
type Sample struct {
	Start     time.Time // when its run began (warm-up included)
	Result    loadgen.Result
	ServerCPU time.Duration // the server's CPU time during the window

	// How busy the server's and the load generator's cores were, softirq
	// (much of the loopback's TCP work) and steal included; only when pinned.
	ServerCore, LoadCore float64
	CoresKnown           bool
}

// Cell is one server in one scenario: its samples, or why it has none.
type Cell struct {
	Scenario Scenario
	Server   Server
	Samples  []Sample
	Status   string // empty when measured
	Wrk      *WrkResult
	WrkErr   string
	Open     [][]Sample // the open loop's samples at each of Options.Rates
}

// Suite is a whole run of the benchmark.
type Suite struct {
	Opts    Options
	Machine Machine
	Cells   []*Cell
	Args    string // the command line's flags, to run it again
	Started time.Time
	Took    time.Duration
}

// runSuite measures every server of every scenario. Within a scenario the
// servers run side by side and are measured in turn, run after run
// (A B A B ...), so that drift in the machine hits all of them alike; a
// -base twin comes right after its server in opts.Servers, so each run
// measures the two back to back.
// A server that fails is reported, and the suite goes on.
func runSuite(opts Options, bins string, unavailable map[string]string, prog *progress) *Suite {
	s := &Suite{Opts: opts, Machine: describeMachine(opts.Pin), Started: time.Now()}
	for _, sc := range opts.Scenarios {
		var cells []*Cell
		for _, srv := range opts.Servers {
			if srv.Kind != sc.Kind {
				continue
			}
			c := &Cell{Scenario: sc, Server: srv}
			if why, ok := unavailable[srv.Binary.Name]; ok {
				c.Status = "not available: " + why
			}
			cells = append(cells, c)
		}
		s.Cells = append(s.Cells, cells...)
		runScenario(opts, bins, cells, prog)
	}
	s.Took = time.Since(s.Started)
	return s
}

// steps counts the measurements runSuite will make, for the progress bar.
func steps(opts Options, unavailable map[string]string) int {
	n := 0
	for _, sc := range opts.Scenarios {
		for _, srv := range opts.Servers {
			if srv.Kind == sc.Kind && unavailable[srv.Binary.Name] == "" {
				n += opts.Runs * (1 + len(rates(opts, sc)))
			}
		}
	}
	return n
}

// rates returns the open-loop rates sc is measured at: opts.Rates, or none
// if its load has no open loop.
func rates(opts Options, sc Scenario) []float64 {
	if !sc.OpenLoop() {
		return nil
	}
	return opts.Rates
}

// runScenario measures cells, one scenario's servers: in every run, each
// server's closed-loop peak, then at each open-loop rate each server, the
// servers in the same order every time. A kind with an upstream has it
// started first, on loadCPU, and every server pointed at it.
func runScenario(opts Options, bins string, cells []*Cell, prog *progress) {
	if len(cells) == 0 {
		return
	}
	sc := cells[0].Scenario
	rates := rates(opts, sc)
	steps := opts.Runs * (1 + len(rates))
	var upstream *process
	var upErr error
	if _, has := upstreams[sc.Kind]; has {
		if b := opts.Upstreams[sc.Kind]; b == nil {
			upErr = fmt.Errorf("no upstream for %s: none of its upstream programs is available", sc.Kind)
		} else {
			upstream, upErr = startServer(launch{name: "upstream " + b.Name, bin: binPath(bins, b), addrFlag: "-addr",
				cpu: loadCPU, pin: opts.Pin})
		}
	}
	procs := make([]*process, len(cells))
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.stop()
			}
		}
		if upstream != nil {
			upstream.stop()
		}
	}()
	for i, c := range cells {
		c.Open = make([][]Sample, len(opts.Rates))
		if c.Status != "" {
			continue
		}
		if upErr != nil {
			c.Status = "failed: " + upErr.Error()
			prog.skip(steps)
			continue
		}
		l := launch{name: c.Server.Name, bin: binPath(bins, c.Server.Binary), addrFlag: c.Server.addrFlag(),
			udp: udpKinds[sc.Kind], args: c.Server.Args, cpu: serverCPU, pin: opts.Pin}
		if upstream != nil {
			l.args = append(slices.Clone(l.args), c.Server.UpstreamFlag, upstream.addr)
		}
		p, err := startServer(l)
		if err != nil {
			c.Status = "failed: " + err.Error()
			prog.skip(steps)
			continue
		}
		procs[i] = p
	}
	for run := range opts.Runs {
		for r := -1; r < len(rates); r++ {
			rate, what := 0.0, ""
			if r >= 0 {
				rate, what = rates[r], "  at "+perSecond(rates[r])
			}
			for i, c := range cells {
				if procs[i] == nil {
					continue
				}
				if c.Status != "" {
					prog.skip(1)
					continue
				}
				prog.begin(fmt.Sprintf("%s  %s%s  run %d/%d", c.Scenario.Title(), c.Server.Name, what, run+1, opts.Runs), opts.Warmup+opts.Duration)
				sample, err := measure(opts, c.Scenario, procs[i], rate)
				prog.end()
				if upstream != nil {
					if dead := upstream.alive(); dead != nil {
						err = dead
					}
				}
				if err != nil {
					c.Status = "failed: " + err.Error()
					if r >= 0 {
						c.Status = fmt.Sprintf("failed at %s: %v", perSecond(rate), err)
					}
					continue
				}
				if r < 0 {
					c.Samples = append(c.Samples, sample)
				} else {
					c.Open[r] = append(c.Open[r], sample)
				}
			}
		}
	}
	if opts.Wrk > 0 && wrkAvailable() {
		for i, c := range cells {
			if procs[i] == nil || c.Status != "" || c.Scenario.Kind != KindHTTP {
				continue
			}
			prog.note(fmt.Sprintf("wrk  %s  %s", c.Scenario.Title(), c.Server.Name))
			var err error
			if c.Wrk, err = runWrk(procs[i].addr, c.Scenario.Conns, opts.Wrk); err != nil {
				c.WrkErr = err.Error()
			}
		}
	}
}

// udpResend is how long a UDP datagram may go unanswered before the load
// sends it again.
const udpResend = 50 * time.Millisecond

// measure runs one scenario's load against one server: closed-loop, or at
// rate round trips per second if rate > 0.
func measure(opts Options, sc Scenario, p *process, rate float64) (Sample, error) {
	var cpu0, cpu1 time.Duration
	var cores0, cores1 map[int]coreTicks
	cfg := loadgen.Config{
		Addr:     p.addr,
		Conns:    sc.Conns,
		Size:     sc.Size,
		Warmup:   opts.Warmup,
		Duration: opts.Duration,
		Plain:    opts.Plain,
		Resend:   udpResend,
		Rate:     rate,
		Tick:     opts.Tick,
		OnWindow: func(open bool) {
			if open {
				cpu0, cores0 = p.cpuTime(), readCores()
			} else {
				cpu1, cores1 = p.cpuTime(), readCores()
			}
		},
	}
	start := time.Now()
	res, err := sc.load()(cfg)
	if err != nil {
		if dead := p.alive(); dead != nil {
			return Sample{}, dead
		}
		return Sample{}, err
	}
	sample := Sample{Start: start, Result: res, ServerCPU: cpu1 - cpu0}
	if opts.Pin {
		srv, ok1 := coreBusy(cores0, cores1, serverCPU)
		load, ok2 := coreBusy(cores0, cores1, loadCPU)
		sample.ServerCore, sample.LoadCore, sample.CoresKnown = srv, load, ok1 && ok2
	}
	return sample, nil
}

func binPath(dir string, b *Binary) string { return dir + "/" + b.Name }
