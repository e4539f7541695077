package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kasync-go/kasync/bench/loadgen"
)

// row is one line of the results table, as text.
type row struct {
	scenario, server, conns, size, throughput, p50, p99, ratio, vsBase, loadCPU, serverCPU, cores, perEnter string
	status                                                                                                  string // instead of the figures
}

var header = row{"scenario", "server", "conns", "size", "throughput median [min-max]", "p50", "p99",
	"ratio", "vs @base [min-max]", "load CPU", "server CPU", "cores busy", "per enter", ""}

// mdHeader is header for Markdown, with a column for the status.
func mdHeader(base bool) []string { return append(header.cells(base), "note") }

// rows turns the suite into table rows, scenario by scenario.
func rows(s *Suite) []row {
	var out []row
	for _, c := range s.Cells {
		r := row{scenario: c.Scenario.Title(), server: c.Server.Name, conns: fmt.Sprint(c.Scenario.Conns), size: "-"}
		if c.Server.Baseline {
			r.server += " (baseline)"
		}
		if c.Scenario.Size > 0 && c.Scenario.Kind != KindHTTP {
			r.size = sizeLabel(c.Scenario.Size)
		}
		if len(c.Samples) == 0 {
			r.status = c.Status
			if r.status == "" {
				r.status = "no measurement"
			}
			out = append(out, r)
			continue
		}
		sum := summarize(c, baselineOf(s.Cells, c))
		unit := c.Scenario.Unit()
		r.throughput = fmt.Sprintf("%s [%s-%s] %s", figure(sum.Throughput, unit), figure(sum.ThroughputLo, unit), figure(sum.ThroughputHi, unit), unit)
		r.p50, r.p99 = latency(sum.P50), latency(sum.P99)
		r.ratio = "-"
		if sum.HasRatio {
			r.ratio = fmt.Sprintf("%.2fx", sum.Ratio)
		}
		r.vsBase = "-"
		if med, lo, hi, ok := pairedRatio(c, twinOf(s.Cells, c)); ok {
			r.vsBase = fmt.Sprintf("%.3fx [%.3f-%.3f]", med, lo, hi)
		}
		r.loadCPU = fmt.Sprintf("%.0f%%", 100*sum.LoadCPU)
		r.serverCPU = fmt.Sprintf("%.0f%%", 100*sum.ServerCPU)
		r.perEnter = fmt.Sprintf("%.1f", sum.PerEnter)
		r.cores = "-"
		if sum.CoresKnown {
			r.cores = fmt.Sprintf("%.0f/%.0f%%", 100*sum.ServerCore, 100*sum.LoadCore)
		}
		r.status = strings.Join(nonEmpty(c.Status, resends(sum)), "; ") // failed in a later run; UDP's resends
		out = append(out, r)
	}
	return out
}

// resends says how many UDP datagrams were sent again and how many echoes
// came late, over all runs; "" if none.
func resends(sum Summary) string {
	if sum.Resent == 0 && sum.Late == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d datagrams resent (unanswered for %v), %d late echoes, over %d runs",
		sum.Resent, sum.Requests, udpResend, sum.Late, sum.Runs)
}

func nonEmpty(v ...string) []string {
	var out []string
	for _, s := range v {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// cells returns the row's cells, with the vs @base column when base; a
// status (why there are no figures, or what went wrong after some) comes
// last.
func (r row) cells(base bool) []string {
	if r.throughput == "" {
		r.p50, r.p99, r.ratio, r.vsBase, r.loadCPU, r.serverCPU, r.cores, r.perEnter = "-", "-", "-", "-", "-", "-", "-", "-"
		r.throughput, r.status, _ = strings.Cut(r.status, ": ")
	}
	c := []string{r.scenario, r.server, r.conns, r.size, r.throughput, r.p50, r.p99, r.ratio}
	if base {
		c = append(c, r.vsBase)
	}
	c = append(c, r.loadCPU, r.serverCPU, r.cores, r.perEnter)
	if r.status != "" {
		c = append(c, r.status)
	}
	return c
}

// openHeader is the open-loop table's header, with the vs @base column when base.
func openHeader(base bool) []string {
	h := []string{"scenario", "server", "offered", "achieved/s [min-max]", "sustained", "p50", "p99", "p99.9",
		"server CPU ms/1k RT [min-max]", "CPU/RT vs baseline [min-max]"}
	if base {
		h = append(h, "CPU/RT vs @base [min-max]")
	}
	return append(h, "load CPU", "send lag p99", "note")
}

// openRows returns the open-loop table's rows: for each scenario, each
// rate, each server; nothing without -rate.
func openRows(s *Suite) [][]string {
	var out [][]string
	base := hasBase(s)
	for i, c := range s.Cells {
		if i > 0 && s.Cells[i-1].Scenario == c.Scenario || !c.Scenario.OpenLoop() {
			continue // the scenario's cells were done with its first, or it has no open loop
		}
		var group []*Cell
		for _, d := range s.Cells {
			if d.Scenario == c.Scenario {
				group = append(group, d)
			}
		}
		for r, offered := range s.Opts.Rates {
			for _, d := range group {
				out = append(out, openRow(s, d, r, offered, base))
			}
		}
	}
	return out
}

func openRow(s *Suite, c *Cell, r int, offered float64, base bool) []string {
	name := c.Server.Name
	if c.Server.Baseline {
		name += " (baseline)"
	}
	row := []string{c.Scenario.Title(), name, perSecond(offered)}
	sum := summarizeOpen(c, r, baselineOf(s.Cells, c))
	if sum.Runs == 0 {
		status := c.Status
		if status == "" {
			status = "no measurement"
		}
		n := len(openHeader(base)) - len(row) - 1
		why, rest, _ := strings.Cut(status, ": ")
		row = append(row, why)
		for range n - 1 {
			row = append(row, "-")
		}
		return append(row, rest)
	}
	row = append(row, fmt.Sprintf("%s [%s-%s]", rate(sum.Achieved), rate(sum.AchLo), rate(sum.AchHi)))
	switch {
	case sum.Sustained == sum.Runs:
		row = append(row, "yes")
	case sum.Sustained == 0:
		row = append(row, "no")
	default:
		row = append(row, fmt.Sprintf("%d/%d runs", sum.Sustained, sum.Runs))
	}
	row = append(row, latency(sum.P50), latency(sum.P99), latency(sum.P999))
	cpu := "-"
	if sum.CPUPer1k > 0 {
		cpu = fmt.Sprintf("%s [%s-%s]", millis(sum.CPUPer1k), millis(sum.CPUPer1kLo), millis(sum.CPUPer1kHi))
	}
	row = append(row, cpu)
	ratio := "-"
	if sum.HasRatio {
		ratio = fmt.Sprintf("%.2fx [%.2f-%.2f]", sum.CPURatio, sum.CPURatioLo, sum.CPURatioHi)
	}
	row = append(row, ratio)
	if base {
		vs := "-"
		if med, lo, hi, ok := pairedCPURatio(c, twinOf(s.Cells, c), r); ok {
			vs = fmt.Sprintf("%.3fx [%.3f-%.3f]", med, lo, hi)
		}
		row = append(row, vs)
	}
	row = append(row, fmt.Sprintf("%.0f%%", 100*sum.LoadCPU), latency(sum.SendLag))
	return append(row, c.Status)
}

// warnings lists what makes figures doubtful: above all, a load generator
// that used up its core while the server did not, so measured itself.
func warnings(s *Suite) []string {
	var out []string
	for _, c := range s.Cells {
		if len(c.Samples) == 0 {
			continue
		}
		sum := summarize(c, nil)
		load, server, what := sum.LoadCPU, sum.ServerCPU, "the load thread used %.0f%% of a core while the server used %.0f%%"
		if sum.CoresKnown {
			// Softirq work (the loopback's TCP) and steal count here too.
			load, server, what = sum.LoadCore, sum.ServerCore, "the load generator's core was %.0f%% busy while the server's was %.0f%%"
			if _, up := s.Opts.Upstreams[c.Scenario.Kind]; up {
				what = "the load generator's core, which the upstream shares, was %.0f%% busy while the server's was %.0f%%"
			}
		}
		if load > 0.90 && server < 0.90 {
			out = append(out, fmt.Sprintf("%s, %s: "+what+": the generator is the bottleneck, so this figure is a lower bound",
				c.Scenario.Title(), c.Server.Name, 100*load, 100*server))
		}
		if sum.Requests > 0 && float64(sum.Resent) > 0.001*float64(sum.Requests) {
			out = append(out, fmt.Sprintf("%s, %s: %d of %d datagrams went unanswered for %v and were sent again: the server (or its socket's buffer) dropped some, and each drop's wait is in this figure",
				c.Scenario.Title(), c.Server.Name, sum.Resent, sum.Requests, udpResend))
		}
		if sum.CoresKnown && sum.ServerCore-sum.ServerCPU > 0.25 {
			out = append(out, fmt.Sprintf("%s, %s: the server's core was %.0f%% busy but the server used %.0f%%: other work on that core (other processes, steal) disturbed this figure",
				c.Scenario.Title(), c.Server.Name, 100*sum.ServerCore, 100*sum.ServerCPU))
		}
		if c.Status != "" {
			out = append(out, fmt.Sprintf("%s, %s: %s", c.Scenario.Title(), c.Server.Name, c.Status))
		}
	}
	for _, c := range s.Cells {
		for r, offered := range s.Opts.Rates {
			if sum := summarizeOpen(c, r, nil); sum.Runs > 0 && sum.SendLag > time.Millisecond {
				out = append(out, fmt.Sprintf("%s, %s at %s: the generator got to its requests up to %v late (p99): its own delay is in these latencies",
					c.Scenario.Title(), c.Server.Name, perSecond(offered), latency(sum.SendLag)))
			}
		}
	}
	return out
}

// method says in one paragraph how the figures were made.
func method(s *Suite) string {
	o := s.Opts
	return fmt.Sprintf("%s. %d run(s) of %v per server and scenario, each after %v of warm-up, "+
		"servers measured in turn (A B A B ...); figures are medians over runs with [min-max]; "+
		"throughput is round trips per second (req/s), UDP datagrams echoed per second (dgram/s), or for bulk megabytes (10^6 bytes) echoed back per second (MB/s); "+
		"ratio is throughput over the baseline's of the kind in the same run (median of those). "+
		"Load: kasync's ring package on one thread, one io_uring_enter per batch"+recvMode(o.Plain)+"; echo checks every byte. "+
		"load CPU: the load thread's CPU time (getrusage), server CPU: the server process's (/proc/PID/stat), "+
		"as shares of one core; cores busy: the server's/load's core busy (/proc/stat, softirq and steal included); "+
		"per enter: completions per io_uring_enter.",
		s.Machine, o.Runs, o.Duration, o.Warmup) + kindsMethod(s) + baseMethod(s) + openMethod(s)
}

// kindsMethod says how the proxy and the UDP scenarios run, if any did.
func kindsMethod(s *Suite) string {
	var b strings.Builder
	has := map[Kind]bool{}
	bulk := false
	for _, c := range s.Cells {
		has[c.Scenario.Kind] = true
		bulk = bulk || c.Scenario.Bulk
	}
	if has[KindProxy] {
		up := "none was available"
		if u := s.Opts.Upstreams[KindProxy]; u != nil {
			up = u.Name
		}
		fmt.Fprintf(&b, " Proxy: each proxy forwards to an upstream echo server (%s) that the harness starts for the scenario "+
			"pinned to CPU %d, the load generator's (there are only two cores), so the load's core busy share includes the upstream's work; "+
			"its round trips are echo's, through the proxy both ways.", up, loadCPU)
	}
	if bulk {
		fmt.Fprintf(&b, " Bulk: every connection streams without pause while reading the echo back, one send of the size in flight, "+
			"at most %d KiB ahead of its echo (the loopback's socket buffers would hold seconds' worth); "+
			"every byte that comes back is checked against a counter pattern at its offset in the stream, so a proxy that loses, repeats or corrupts bytes fails; "+
			"no latency, no open loop.", loadgen.BulkAhead>>10)
	}
	if has[KindUDP] {
		fmt.Fprintf(&b, " UDP: connected UDP sockets, one datagram outstanding on each (closed loop only, no -rate), every echo checked; "+
			"a datagram unanswered for %v is sent again and counted (the note), and its latency counts from its first send.", udpResend)
	}
	return b.String()
}

// openMethod says, with -rate, how the open-loop figures were made.
func openMethod(s *Suite) string {
	if len(s.Opts.Rates) == 0 {
		return ""
	}
	return fmt.Sprintf(" Open loop (-rate): in every run, after the closed loop, each server again at each offered rate, "+
		"the requests on a fixed schedule spread evenly over the connections and in time, paced by the generator's clock "+
		"(it sleeps in io_uring_enter until the next send; %s), sent when due whether or not earlier replies came (pipelined); "+
		"latency counts from each request's scheduled send time, so queueing is not hidden (no coordinated omission). "+
		"achieved: replies in the window per second; sustained: at least %.0f%% of the requests due in the window were answered in it; "+
		"server CPU ms/1k RT: the server process's utime+stime (/proc/PID/stat, 10 ms ticks) over the window per 1,000 replies; "+
		"CPU/RT vs baseline: that over the baseline's in the same run, median [min-max] over runs (below 1: cheaper)%s; "+
		"send lag: how late the generator got to requests after their scheduled time (its own punctuality; a server's backpressure is in the latency).",
		tickMethod(s.Opts.Tick), 100*sustainedShare, openBaseMethod(s))
}

func tickMethod(tick time.Duration) string {
	if tick <= 0 {
		return "each send at its own time"
	}
	return fmt.Sprintf("sends batched per %v tick, each at the first tick at or after its time, its scheduled time", tick)
}

func openBaseMethod(s *Suite) string {
	if !hasBase(s) {
		return ""
	}
	return "; CPU/RT vs @base: NAME's over NAME@base's in the same run (below 1: the current tree is cheaper)"
}

// baseMethod says, with -base, what the @base servers and vs @base are.
func baseMethod(s *Suite) string {
	if !hasBase(s) {
		return ""
	}
	return fmt.Sprintf(" NAME@base: server NAME built from -base %s, checked out in a detached git worktree and built with its own go.mod; "+
		"it runs beside NAME and is measured right after it in every run; "+
		"vs @base: NAME's req/s over NAME@base's in the same run, median [min-max] over runs (above 1: the current tree is faster).",
		s.Opts.Base)
}

// writeText prints the results table for a terminal.
func writeText(w io.Writer, s *Suite) {
	fmt.Fprintf(w, "%s\n\n", wrap("kasync bench: "+method(s), 100))
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	prev := ""
	base := hasBase(s)
	for i, r := range append([]row{header}, rows(s)...) {
		if i > 1 && r.scenario != prev {
			// An empty row of cells keeps the columns aligned across scenarios.
			fmt.Fprintln(tw, strings.Repeat("\t", len(header.cells(base))-1))
		}
		prev = r.scenario
		// The last cell is outside the columns, so a long status does
		// not widen them.
		fmt.Fprintln(tw, strings.Join(r.cells(base), "\t"))
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	if open := openRows(s); len(open) > 0 {
		fmt.Fprintln(w, "\nopen loop (fixed offered rate, latency from the scheduled send):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, r := range append([][]string{openHeader(hasBase(s))}, open...) {
			fmt.Fprintln(tw, strings.TrimRight(strings.Join(r, "\t"), "\t"))
		}
		tw.Flush()
	}
	if wrk := wrkRows(s); len(wrk) > 0 {
		fmt.Fprintln(w, "\nwrk (-t1, same connections, for reference):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, r := range wrk {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		tw.Flush()
	}
	for _, warn := range warnings(s) {
		fmt.Fprintf(w, "\nwarning: %s", warn)
	}
	fmt.Fprintf(w, "\n\nsuite took %v\n", s.Took.Round(time.Second))
}

// wrkRows returns wrk's figures as rows, header first, or nothing if wrk did not run.
func wrkRows(s *Suite) [][]string {
	var out [][]string
	for _, c := range s.Cells {
		switch {
		case c.Wrk != nil:
			r := []string{c.Scenario.Title(), c.Server.Name, rate(c.Wrk.Throughput), latency(c.Wrk.P50), latency(c.Wrk.P99)}
			if c.Wrk.Note != "" {
				r = append(r, c.Wrk.Note)
			}
			out = append(out, r)
		case c.WrkErr != "":
			out = append(out, []string{c.Scenario.Title(), c.Server.Name, c.WrkErr})
		}
	}
	if len(out) > 0 {
		out = append([][]string{{"scenario", "server", "req/s", "p50", "p99"}}, out...)
	}
	return out
}

// writeMarkdown writes the report as Markdown, the chart beside it.
func writeMarkdown(w io.Writer, s *Suite, chart string) {
	fmt.Fprintf(w, "# kasync benchmarks\n\n%s\n\nRun %s, took %v: `cd bench && go run .%s`.\n\n",
		method(s), s.Started.Format("2006-01-02 15:04"), s.Took.Round(time.Second), s.Args)
	if chart != "" {
		fmt.Fprintf(w, "![throughput relative to the baseline](%s)\n\n", chart)
	}
	mdTable(w, mdHeader(hasBase(s)), rowsCells(rows(s), hasBase(s)))
	if open := openRows(s); len(open) > 0 {
		fmt.Fprintln(w, "\nOpen loop (fixed offered rate, latency from the scheduled send):")
		fmt.Fprintln(w)
		mdTable(w, openHeader(hasBase(s)), open)
	}
	if wrk := wrkRows(s); len(wrk) > 0 {
		fmt.Fprintln(w, "\nwrk (-t1, same connections, for reference):")
		fmt.Fprintln(w)
		mdTable(w, wrk[0], wrk[1:])
	}
	if warns := warnings(s); len(warns) > 0 {
		fmt.Fprintln(w, "\nWarnings:")
		fmt.Fprintln(w)
		for _, warn := range warns {
			fmt.Fprintf(w, "- %s\n", warn)
		}
	}
}

func rowsCells(rs []row, base bool) [][]string {
	var out [][]string
	for _, r := range rs {
		out = append(out, r.cells(base))
	}
	return out
}

func mdTable(w io.Writer, head []string, body [][]string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(head)))
	for _, r := range body {
		for len(r) < len(head) {
			r = append(r, "")
		}
		for i := range r {
			r[i] = strings.ReplaceAll(r[i], "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

// rate formats requests per second: 70.1k, 1.23M.
func rate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// figure formats a throughput in unit: MB/s with up to one decimal, the
// others as rate does.
func figure(v float64, unit string) string {
	if unit != "MB/s" {
		return rate(v)
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// perSecond formats a rate of round trips: 20.0k/s.
func perSecond(v float64) string { return rate(v) + "/s" }

// millis formats a duration as milliseconds, with two decimals.
func millis(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }

// latency formats a duration with three significant digits.
func latency(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fus", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// wrap breaks text into lines of at most width bytes, at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if n+1+len(word) > width {
				b.WriteByte('\n')
				n = 0
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

func recvMode(plain bool) string {
	if plain {
		return ", single-shot receives (-plain)"
	}
	return ", multishot receives"
}
