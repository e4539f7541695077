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
// "listening on ADDR" when ready and take their work from flags), and its
// scenarios to allScenarios; the harness, the report and the chart need no
// change.
const (
	KindEcho Kind = "echo"
	KindHTTP Kind = "http"
)

// runners generate each kind's load.
var runners = map[Kind]func(loadgen.Config) (loadgen.Result, error){
	KindEcho: loadgen.Echo,
	KindHTTP: loadgen.HTTP,
}

// Scenario is one load shape: every server of its kind gets the same.
type Scenario struct {
	Name  string // what -scenarios selects it by
	Kind  Kind
	Conns int
	Size  int // echo: bytes per message
}

// Title is the scenario as the report names it, e.g. "echo 100x64B".
func (s Scenario) Title() string {
	if s.Kind == KindEcho {
		return fmt.Sprintf("echo %dx%s", s.Conns, sizeLabel(s.Size))
	}
	return fmt.Sprintf("%s c%d", s.Kind, s.Conns)
}

// allScenarios is the suite, in the order it runs.
var allScenarios = []Scenario{
	{Name: "echo-100x64", Kind: KindEcho, Conns: 100, Size: 64},
	{Name: "echo-1000x64", Kind: KindEcho, Conns: 1000, Size: 64},
	{Name: "echo-100x4k", Kind: KindEcho, Conns: 100, Size: 4096},
	{Name: "http-c100", Kind: KindHTTP, Conns: 100},
}

// Server is one program under test, in one configuration.
type Server struct {
	Name     string // as the report names it
	Kind     Kind
	Baseline bool     // the one its kind's ratios are relative to
	Binary   *Binary  // what to run
	Args     []string // flags besides -addr
	BaseOf   string   // for a -base twin ("<name>@base"): the server it is the base revision's build of
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
	binNetEcho    = &Binary{Name: "netecho", Pkg: "./servers/netecho"}
	binGnetEcho   = &Binary{Name: "gnetecho", Pkg: "./servers/gnetecho"}
	binRingEcho   = &Binary{Name: "ringecho", Pkg: "./servers/ringecho"}
	binNetHTTP    = &Binary{Name: "nethttp", Pkg: "./servers/nethttp"}
	binFastHTTP   = &Binary{Name: "fasthttp", Pkg: "./servers/fasthttp"}
	binGnetHTTP   = &Binary{Name: "gnethttp", Pkg: "./servers/gnethttp"}
	binKasyncEcho = &Binary{Name: "kasync-echo", InRoot: true, Pkg: "./examples/echo", Optional: true}
	binKasyncHTTP = &Binary{Name: "kasync-httpserver", InRoot: true, Pkg: "./examples/httpserver", Optional: true}
	binKasyncFast = &Binary{Name: "kasync-httpfast", InRoot: true, Pkg: "./examples/httpfast", Optional: true}
	binCEcho      = &Binary{Name: "liburing-echo", CSource: "liburing/echo.c", Optional: true}
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
		if size > 0 && out[i].Kind == KindEcho {
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
