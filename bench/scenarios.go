package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kasync-go/kasync/bench/loadgen"
)

// Kind is what a scenario measures; it picks the load generator and the
// servers that can take part.
type Kind string

// The kinds of scenario. File scenarios (os.File against kasync's File) are
// the next kind to come: add KindFile here, a runner for it to runners, its
// subjects to servers (programs built like the servers, which print
// "listening on ADDR" when ready and take their work from flags; AddrFlag
// names the flag a program takes its address by where it is not -addr), and
// its scenarios to allScenarios; a kind whose subjects forward to a server
// of the harness's names its programs in upstreams, one that listens on UDP
// goes in udpKinds, and a load counted in bytes or datagrams rather than
// round trips says so in Scenario.Unit, as one without an open loop does in
// Scenario.OpenLoop. The harness, the report and the chart need no change.
const (
	KindEcho  Kind = "echo"
	KindHTTP  Kind = "http"
	KindProxy Kind = "proxy" // a TCP proxy in front of an echo server the harness starts
	KindUDP   Kind = "udp"
)

// runners generate each kind's load; a Bulk scenario's is loadgen.Bulk.
var runners = map[Kind]func(loadgen.Config) (loadgen.Result, error){
	KindEcho:  loadgen.Echo,
	KindHTTP:  loadgen.HTTP,
	KindProxy: loadgen.Echo, // round trips through the proxy
	KindUDP:   loadgen.UDP,
}

// upstreams are, for a kind whose subjects forward to another server, the
// programs that server may be, best first: each scenario of the kind starts
// the first one that is available, pinned to the load generator's CPU (there
// are only two), and passes its address to every subject by UpstreamFlag.
// The C liburing echo when it builds (gcc, liburing-dev), else Go's net.
var upstreams = map[Kind][]*Binary{
	KindProxy: {binCEcho, binNetEcho},
}

// udpKinds are the kinds whose subjects listen on UDP.
var udpKinds = map[Kind]bool{KindUDP: true}

// Scenario is one load shape: every server of its kind gets the same.
type Scenario struct {
	Name  string // what -scenarios selects it by
	Kind  Kind
	Conns int
	Size  int  // echo, proxy, UDP: bytes per message; Bulk: bytes per send
	Bulk  bool // stream both ways at once (loadgen.Bulk) instead of round trips: MB/s
}

// Title is the scenario as the report names it, e.g. "echo 100x64B".
func (s Scenario) Title() string {
	switch {
	case s.Bulk:
		return fmt.Sprintf("%s bulk c%d", s.Kind, s.Conns)
	case s.Kind == KindHTTP:
		return fmt.Sprintf("%s c%d", s.Kind, s.Conns)
	}
	return fmt.Sprintf("%s %dx%s", s.Kind, s.Conns, sizeLabel(s.Size))
}

// Unit is what the scenario's throughput counts: round trips (HTTP requests
// and echoes through a proxy too), UDP datagrams echoed, or for Bulk
// megabytes (10^6 bytes) echoed back.
func (s Scenario) Unit() string {
	switch {
	case s.Bulk:
		return "MB/s"
	case s.Kind == KindUDP:
		return "dgram/s"
	}
	return "req/s"
}

// Figure is a result's throughput in the scenario's unit.
func (s Scenario) Figure(r loadgen.Result) float64 {
	if s.Bulk {
		return r.BytesPerSecond() / 1e6
	}
	return r.Throughput()
}

// OpenLoop reports whether the scenario takes -rate: its load has an open
// loop (round trips over TCP; not Bulk, not UDP).
func (s Scenario) OpenLoop() bool { return !s.Bulk && s.Kind != KindUDP }

// load returns the generator of the scenario's load.
func (s Scenario) load() func(loadgen.Config) (loadgen.Result, error) {
	if s.Bulk {
		return loadgen.Bulk
	}
	return runners[s.Kind]
}

// sized reports whether the scenario's Size is a message size (what -size overrides).
func (s Scenario) sized() bool { return !s.Bulk && s.Kind != KindHTTP }

// allScenarios is the suite, in the order it runs.
var allScenarios = []Scenario{
	{Name: "echo-100x64", Kind: KindEcho, Conns: 100, Size: 64},
	{Name: "echo-1000x64", Kind: KindEcho, Conns: 1000, Size: 64},
	{Name: "echo-100x4k", Kind: KindEcho, Conns: 100, Size: 4096},
	{Name: "http-c100", Kind: KindHTTP, Conns: 100},
	{Name: "proxy-100x64", Kind: KindProxy, Conns: 100, Size: 64},
	{Name: "proxy-bulk-1", Kind: KindProxy, Conns: 1, Size: 64 << 10, Bulk: true},
	{Name: "proxy-bulk-16", Kind: KindProxy, Conns: 16, Size: 64 << 10, Bulk: true},
	{Name: "udp-100x64", Kind: KindUDP, Conns: 100, Size: 64},
	// 64, not 100: a hundred 1 KiB datagrams queued at once overflow a UDP
	// socket's default receive buffer (rmem_default, 208 KiB; each costs it
	// over 2 KiB), and the kernel drops some (Udp RcvbufErrors in
	// /proc/net/snmp); on a trial 64 dropped none.
	{Name: "udp-64x1k", Kind: KindUDP, Conns: 64, Size: 1024},
}

// Server is one program under test, in one configuration.
type Server struct {
	Name     string // as the report names it
	Kind     Kind
	Baseline bool     // the one its kind's ratios are relative to
	Binary   *Binary  // what to run
	Args     []string // flags besides the address
	BaseOf   string   // for a -base twin ("<name>@base"): the server it is the base revision's build of

	AddrFlag     string // the flag it takes its address by ("-addr" when empty)
	UpstreamFlag string // the flag it takes its kind's upstream's address by (proxy)
}

// addrFlag returns the flag the server takes its address by.
func (s Server) addrFlag() string {
	if s.AddrFlag == "" {
		return "-addr"
	}
	return s.AddrFlag
}

// Binary is a server program and where to build it from.
type Binary struct {
	Name     string // file name of the built program
	InRoot   bool   // in kasync's own module (../) rather than bench's
	Pkg      string // package directory, relative to its module
	Optional bool   // report "not available" rather than fail when it does not build
	CSource  string // a C program on liburing, built with gcc (relative to bench/)
	Src      string // InRoot: build in this copy of kasync's module instead (the -base worktree)
}

var (
	binNetEcho     = &Binary{Name: "netecho", Pkg: "./servers/netecho"}
	binGnetEcho    = &Binary{Name: "gnetecho", Pkg: "./servers/gnetecho"}
	binRingEcho    = &Binary{Name: "ringecho", Pkg: "./servers/ringecho"}
	binNetHTTP     = &Binary{Name: "nethttp", Pkg: "./servers/nethttp"}
	binFastHTTP    = &Binary{Name: "fasthttp", Pkg: "./servers/fasthttp"}
	binGnetHTTP    = &Binary{Name: "gnethttp", Pkg: "./servers/gnethttp"}
	binKasyncEcho  = &Binary{Name: "kasync-echo", InRoot: true, Pkg: "./examples/echo", Optional: true}
	binKasyncHTTP  = &Binary{Name: "kasync-httpserver", InRoot: true, Pkg: "./examples/httpserver", Optional: true}
	binKasyncFast  = &Binary{Name: "kasync-httpfast", InRoot: true, Pkg: "./examples/httpfast", Optional: true}
	binCEcho       = &Binary{Name: "liburing-echo", CSource: "liburing/echo.c", Optional: true}
	binNetProxy    = &Binary{Name: "netproxy", Pkg: "./servers/netproxy"}
	binKasyncProxy = &Binary{Name: "kasync-proxy", InRoot: true, Pkg: "./examples/proxy", Optional: true}
	binNetUDP      = &Binary{Name: "netudp", Pkg: "./servers/netudp"}
	binGnetUDP     = &Binary{Name: "gnetudp", Pkg: "./servers/gnetudp"}
	binKasyncUDP   = &Binary{Name: "kasync-udpecho", InRoot: true, Pkg: "./examples/udpecho", Optional: true}
)

// servers lists every server; each scenario runs those of its kind. Every
// server is given one core, so kasync's run one loop.
var servers = []Server{
	{Name: "net", Kind: KindEcho, Baseline: true, Binary: binNetEcho},
	{Name: "gnet", Kind: KindEcho, Binary: binGnetEcho, Args: []string{"-loops", "1"}},
	{Name: "kasync-conn", Kind: KindEcho, Binary: binKasyncEcho, Args: []string{"-loops", "1", "-mode", "conn"}},
	{Name: "kasync-handler", Kind: KindEcho, Binary: binKasyncEcho, Args: []string{"-loops", "1", "-mode", "handler"}},
	{Name: "ring", Kind: KindEcho, Binary: binRingEcho},
	{Name: "liburing-c", Kind: KindEcho, Binary: binCEcho},
	{Name: "net/http", Kind: KindHTTP, Baseline: true, Binary: binNetHTTP},
	{Name: "fasthttp", Kind: KindHTTP, Binary: binFastHTTP},
	{Name: "gnet-http", Kind: KindHTTP, Binary: binGnetHTTP, Args: []string{"-loops", "1"}},
	{Name: "kasync-http", Kind: KindHTTP, Binary: binKasyncHTTP, Args: []string{"-loops", "1"}},
	{Name: "kasync-httpfast", Kind: KindHTTP, Binary: binKasyncFast, Args: []string{"-loops", "1"}},
	// examples/proxy takes its address by -listen, not -addr.
	{Name: "netproxy", Kind: KindProxy, Baseline: true, Binary: binNetProxy, UpstreamFlag: "-to"},
	{Name: "kasync-proxy-spliced", Kind: KindProxy, Binary: binKasyncProxy, AddrFlag: "-listen", UpstreamFlag: "-to",
		Args: []string{"-mode", "goroutine", "-loops", "1"}},
	{Name: "kasync-proxy-handler", Kind: KindProxy, Binary: binKasyncProxy, AddrFlag: "-listen", UpstreamFlag: "-to",
		Args: []string{"-mode", "handler", "-loops", "1"}},
	{Name: "netudp", Kind: KindUDP, Baseline: true, Binary: binNetUDP},
	{Name: "gnet-udp", Kind: KindUDP, Binary: binGnetUDP, Args: []string{"-loops", "1"}},
	{Name: "kasync-udp-conn", Kind: KindUDP, Binary: binKasyncUDP, Args: []string{"-mode", "conn", "-loops", "1"}},
	{Name: "kasync-udp", Kind: KindUDP, Binary: binKasyncUDP, Args: []string{"-mode", "handler", "-loops", "1"}},
}

// selectScenarios returns the scenarios named in list (comma-separated
// names, or kinds for all scenarios of a kind; empty for all), with conns and
// size overriding theirs where not zero.
func selectScenarios(list string, conns, size int) ([]Scenario, error) {
	var out []Scenario
	if list == "" {
		out = append(out, allScenarios...)
	} else {
		for _, name := range strings.Split(list, ",") {
			name = strings.TrimSpace(name)
			found := false
			for _, s := range allScenarios {
				if s.Name == name || string(s.Kind) == name {
					out = append(out, s)
					found = true
				}
			}
			if !found {
				return nil, fmt.Errorf("unknown scenario %q (have %s)", name, scenarioNames())
			}
		}
	}
	for i := range out {
		if conns > 0 {
			out[i].Conns = conns
		}
		if size > 0 && out[i].sized() {
			out[i].Size = size
		}
	}
	return out, nil
}

// selectServers returns the servers named in list (all when empty).
func selectServers(list string) ([]Server, error) {
	if list == "" {
		return slices.Clone(servers), nil
	}
	var out []Server
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, s := range servers {
			if s.Name == name || s.Binary.Name == name {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown server %q", name)
		}
	}
	return out, nil
}

// rebase makes the server called name the baseline of its kind in list.
func rebase(list []Server, name string) ([]Server, error) {
	i := slices.IndexFunc(list, func(s Server) bool { return s.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("-baseline %s: not among the servers that run", name)
	}
	kind := list[i].Kind
	for j := range list {
		if list[j].Kind == kind {
			list[j].Baseline = j == i
		}
	}
	return list, nil
}

func scenarioNames() string {
	var names []string
	for _, s := range allScenarios {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

func sizeLabel(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}
