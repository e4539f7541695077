// Command bench is kasync's benchmark suite: kasync's servers side by side
// with Go's net, gnet, net/http and fasthttp, under the same load, on the same
// machine, in the same run. Four kinds: TCP echo, HTTP, a TCP proxy in front
// of an echo server (round trips, and bulk streams in MB/s), and UDP echo.
//
//	cd bench && go run .          # the full suite (about 20 minutes)
//	cd bench && go run . -quick   # a short one (about a minute)
//	cd bench && go run . -base HEAD~1 -runs 7   # the current tree against the commit before
//
// Each server is its own process pinned to CPU 0 with GOMAXPROCS=1; the load
// generator (package loadgen, on kasync's ring package) runs in this process,
// pinned to CPU 1. The table goes to stdout, progress to stderr, and a
// Markdown report and an SVG chart to results/.
//
// -base REV proves that a change keeps performance: it checks the git
// revision REV (HEAD~1, a hash, a branch) out into a detached worktree in a
// temporary directory, builds every selected kasync server (those built from
// kasync's examples/: kasync-conn, kasync-handler, kasync-http,
// kasync-httpfast, the kasync-proxy-* and kasync-udp* ones) from it as well, with that revision's own go.mod, and runs
// each as NAME@base beside NAME, measured right after it in every run
// (NAME, NAME@base, NAME, NAME@base, ...). The table gains a column "vs
// @base": NAME's req/s over NAME@base's in the same run, median [min-max]
// over runs. The worktree is removed (and git worktree prune run) once the
// servers are built, and on an error or an interrupt. For example, 7
// alternating runs of the change against the commit before it:
//
//	cd bench && go run . -base HEAD~1 -runs 7 -servers kasync-conn,kasync-handler -scenarios echo
//
// The proxy and UDP kinds, for example:
//
//	cd bench && go run . -scenarios proxy,udp -runs 7
//
// The proxy scenarios start an upstream echo server for the proxies to
// forward to, the C liburing echo (liburing/echo.c) where it builds, else
// servers/netecho, pinned to CPU 1 beside the load generator: there are only
// two cores, and the proxy under test has the other. Bulk streams send
// continuously on every connection and read the echo back, every byte
// checked against a counter pattern at its offset; the figure is MB/s
// echoed back. UDP echo keeps one datagram outstanding per connected socket
// and sends one again that goes unanswered for 50ms (counted in the note).
//
// -rate R1,R2,... adds an open loop to the closed loop's peak: in every run,
// after the closed-loop measurements, each server is measured again at each
// offered rate, R round trips per second over all of the scenario's
// connections (20000, 20k, 1.5M), the servers in the same alternating order.
// The generator sends on a fixed schedule, spread evenly over the
// connections and in time and paced by its own clock, not by the replies:
// a request goes out when it is due whether or not the replies to earlier
// ones came (they are pipelined), and between sends it sleeps in
// io_uring_enter until the next one. Sends go out in batches once per
// -tick (default 100us), each at the first tick at or after its time,
// which is then its scheduled time; -tick 0 sends each at its own time, at
// the cost of a wake-up each. Latency is counted from each request's
// scheduled send time, so a server that falls behind shows its queueing
// (no coordinated omission). The report gains an open-loop table: offered
// and achieved rate, whether the server sustained it (answered 98% of the
// requests due in the window), p50, p99 and p99.9 latency, the server's CPU
// time per 1,000 round trips (utime+stime from /proc/PID/stat over the
// window) and that over the baseline server's in the same run (and over
// NAME@base's with -base), medians over -runs. The round trips take it:
// echo, HTTP (pipelined keep-alive GET) and echo through a proxy; the proxy's
// bulk streams and UDP have no open loop and are measured closed-loop only.
// A server's CPU per round trip at a rate it sustains is a steadier figure
// on a noisy machine than its peak:
//
//	cd bench && go run . -servers net,kasync-conn,kasync-handler -scenarios echo-100x64 -rate 20000,40000 -runs 5
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	quick := flag.Bool("quick", false, "a short suite: fewer, shorter runs")
	scenarioList := flag.String("scenarios", "", "comma-separated scenarios or kinds to run (default all): "+scenarioNames())
	serverList := flag.String("servers", "", "comma-separated servers to run (default all)")
	conns := flag.Int("conns", 0, "connections, overriding every scenario's")
	size := flag.Int("size", 0, "message size in bytes, overriding every echo, proxy round-trip and UDP scenario's")
	duration := flag.Duration("duration", 0, "measured window of each run (default 5s, -quick 500ms)")
	warmup := flag.Duration("warmup", 0, "load before each measured window (default 1s, -quick 200ms)")
	runs := flag.Int("runs", 0, "runs of each server in each scenario; medians are reported (default 5, -quick 2)")
	out := flag.String("out", "", "directory for the report and chart (default bench/results): full.md and full.svg, quick.* for -quick, custom.* when narrowed by flags or with -base or -rate")
	noWrk := flag.Bool("nowrk", false, "do not run wrk even if it is installed")
	noPin := flag.Bool("nopin", false, "do not pin the servers and the load generator to CPUs")
	plain := flag.Bool("plain", false, "load with single-shot receives, no provided buffers or registered files (to compare the generator's cost)")
	baseline := flag.String("baseline", "", "the server the ratios are relative to, in place of its kind's usual one (net, net/http); e.g. gnet or liburing-c")
	base := flag.String("base", "", "a git revision (HEAD~1, a hash): also build the selected kasync servers (from examples/) from a worktree of it, "+
		"run each as NAME@base right after NAME in every run, and report NAME's req/s over NAME@base's (vs @base)")
	rateList := flag.String("rate", "", "comma-separated offered rates, round trips per second over all connections (20000, 20k): "+
		"also measure each server open-loop at each, requests on a fixed schedule, latency from the scheduled send, "+
		"and report achieved rate, p50/p99/p99.9 and server CPU per 1k round trips")
	tick := flag.Duration("tick", 100*time.Microsecond, "with -rate: send in batches once per tick, each request at the first tick at or after its time (0: each at its own time, more wake-ups)")
	list := flag.Bool("list", false, "list scenarios and servers, and exit")
	flag.Parse()

	if *list {
		for _, s := range allScenarios {
			fmt.Printf("scenario %-20s %s\n", s.Name, s.Title())
		}
		for _, s := range servers {
			src := s.Binary.Pkg
			if src == "" {
				src = s.Binary.CSource
			}
			argv := append([]string{src, s.addrFlag(), "ADDR"}, s.Args...)
			if s.UpstreamFlag != "" {
				argv = append(argv, s.UpstreamFlag, "UPSTREAM")
			}
			fmt.Printf("server   %-20s %-5s %s\n", s.Name, s.Kind, strings.Join(argv, " "))
		}
		return nil
	}

	opts := Options{Runs: 5, Duration: 5 * time.Second, Warmup: time.Second, Wrk: 5 * time.Second}
	if *quick {
		opts = Options{Runs: 2, Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond, Wrk: time.Second}
	}
	if *runs > 0 {
		opts.Runs = *runs
	}
	if *duration > 0 {
		opts.Duration = *duration
		opts.Wrk = max(time.Second, *duration)
	}
	if *warmup > 0 {
		opts.Warmup = *warmup
	}
	opts.Plain = *plain
	if *noWrk {
		opts.Wrk = 0
	}
	var err error
	if opts.Rates, err = parseRates(*rateList); err != nil {
		return err
	}
	opts.Tick = max(*tick, 0)
	if opts.Scenarios, err = selectScenarios(*scenarioList, *conns, *size); err != nil {
		return err
	}
	if opts.Servers, err = selectServers(*serverList); err != nil {
		return err
	}
	if *base != "" {
		if opts.Servers, err = withBase(opts.Servers); err != nil {
			return err
		}
	}
	if *baseline != "" {
		if opts.Servers, err = rebase(opts.Servers, *baseline); err != nil {
			return err
		}
	}

	dirs, err := findDirs()
	if err != nil {
		return err
	}
	maxConns := 0
	for _, sc := range opts.Scenarios {
		maxConns = max(maxConns, sc.Conns)
	}
	if err := raiseFileLimit(uint64(max(4096, 4*maxConns+256))); err != nil {
		fmt.Fprintln(os.Stderr, "bench: warning:", err)
	}

	dirs.Bin, err = os.MkdirTemp("", "kasync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dirs.Bin)
	// On Ctrl-C, clean up and go; the servers die with us (Pdeathsig).
	var tree *baseTree
	var treeMu sync.Mutex
	removeTree := func() {
		treeMu.Lock()
		t := tree
		treeMu.Unlock()
		if t != nil {
			t.remove()
		}
	}
	defer removeTree()
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupt
		stopBuilds()
		removeTree()
		os.RemoveAll(dirs.Bin)
		fmt.Fprintln(os.Stderr, "\nbench: interrupted")
		os.Exit(130)
	}()
	if *base != "" {
		t, err := newBaseTree(dirs.Root, *base)
		if err != nil {
			return err
		}
		treeMu.Lock()
		tree = t
		treeMu.Unlock()
		fmt.Fprintf(os.Stderr, "bench: checking out -base %s into %s...\n", t, t.dir)
		if err := t.add(); err != nil {
			return err
		}
		setBaseSrc(opts.Servers, t.Module)
		opts.Base = t.String()
	}
	fmt.Fprintln(os.Stderr, "bench: building servers...")
	start := time.Now()
	unavailable, err := buildServers(dirs, opts.Servers)
	if buildsStopped() {
		// Interrupted while building: the signal handler cleans up and
		// exits; report nothing.
		time.Sleep(time.Minute)
	}
	if err != nil {
		return err
	}
	// The binaries are built: the worktree has served.
	removeTree()
	opts.Upstreams = pickUpstreams(opts.Servers, unavailable)
	for name, why := range unavailable {
		fmt.Fprintf(os.Stderr, "bench: %s not available: %s\n", name, why)
	}
	fmt.Fprintf(os.Stderr, "bench: built in %v\n", time.Since(start).Round(100*time.Millisecond))

	// Pin only after building, so the builds had every CPU.
	opts.Pin = !*noPin && canPin()
	if opts.Pin {
		if err := pinSelf(loadCPU); err != nil {
			return fmt.Errorf("pin the load generator to CPU %d: %w", loadCPU, err)
		}
		// Keep a second P although one CPU is left: the load thread sits in
		// io_uring_enter, and the few other goroutines (progress, server
		// output) must not take its only P and make it wait on its return.
		runtime.GOMAXPROCS(2)
	} else if !*noPin {
		fmt.Fprintf(os.Stderr, "bench: warning: CPUs %d and %d are not both available: nothing is pinned, figures are not comparable with pinned runs\n", serverCPU, loadCPU)
	}

	prog := newProgress(os.Stderr, int(os.Stderr.Fd()), steps(opts, unavailable))
	suite := runSuite(opts, dirs.Bin, unavailable, prog)
	prog.close()
	suite.Args = ""
	if len(os.Args) > 1 {
		suite.Args = " " + strings.Join(os.Args[1:], " ")
	}

	writeText(os.Stdout, suite)
	name := "full"
	switch {
	case *scenarioList != "" || *serverList != "" || *conns > 0 || *size > 0 || *base != "" || *rateList != "":
		name = "custom"
	case *quick:
		name = "quick"
	}
	return saveResults(suite, dirs, *out, name)
}

// parseRates parses -rate: comma-separated positive numbers, each with an
// optional k (thousand) or M (million) after it.
func parseRates(list string) ([]float64, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []float64
	for _, field := range strings.Split(list, ",") {
		f := strings.TrimSpace(field)
		mult := 1.0
		switch {
		case strings.HasSuffix(f, "k"), strings.HasSuffix(f, "K"):
			mult, f = 1e3, f[:len(f)-1]
		case strings.HasSuffix(f, "M"):
			mult, f = 1e6, f[:len(f)-1]
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v*mult < 1 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("-rate: %q is not a rate of at least 1 round trip per second", strings.TrimSpace(field))
		}
		out = append(out, v*mult)
	}
	return out, nil
}

// saveResults writes the Markdown report and the SVG chart as name.md and
// name.svg: full for the whole suite, quick for -quick, custom for a run
// narrowed down by flags.
func saveResults(s *Suite, dirs Dirs, out, name string) error {
	if out == "" {
		out = filepath.Join(dirs.Bench, "results")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	svgPath := filepath.Join(out, name+".svg")
	f, err := os.Create(svgPath)
	if err != nil {
		return err
	}
	if err := writeChart(f, s); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	mdPath := filepath.Join(out, name+".md")
	var b strings.Builder
	writeMarkdown(&b, s, name+".svg")
	if err := os.WriteFile(mdPath, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("report: %s\nchart:  %s\n", mdPath, svgPath)
	return nil
}
