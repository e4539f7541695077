package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// WrkResult is what wrk reported for one HTTP server: a second opinion on
// the HTTP figures from a load generator that is not ours.
type WrkResult struct {
	Throughput float64 // requests per second
	P50, P99   time.Duration
	Note       string // wrk's socket error counts, if it had any
}

// wrkAvailable reports whether wrk is installed. The suite never needs it.
func wrkAvailable() bool {
	_, err := exec.LookPath("wrk")
	return err == nil
}

// runWrk runs wrk with one thread and conns connections against addr for d
// (whole seconds, at least 1). It runs on the suite's own CPU, as our load
// generator does.
func runWrk(addr string, conns int, d time.Duration) (*WrkResult, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.Command("wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", "--latency", "http://"+addr+"/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %v: %s", err, bytes.TrimSpace(out))
	}
	return parseWrk(out)
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP50     = regexp.MustCompile(`(?m)^\s+50(?:\.000)?%\s+([0-9.]+[a-z]+)`)
	wrkP99     = regexp.MustCompile(`(?m)^\s+99(?:\.000)?%\s+([0-9.]+[a-z]+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors:.*`)
)

// parseWrk reads wrk's --latency report.
func parseWrk(out []byte) (*WrkResult, error) {
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("wrk: no Requests/sec in its output: %s", bytes.TrimSpace(out))
	}
	if bad := wrkNon2xx.FindSubmatch(out); bad != nil {
		return nil, fmt.Errorf("wrk: %s responses were not 2xx", bad[1])
	}
	r := &WrkResult{Note: string(wrkSockErr.Find(out))}
	r.Throughput, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := wrkP50.FindSubmatch(out); m != nil {
		r.P50, _ = time.ParseDuration(string(m[1]))
	}
	if m := wrkP99.FindSubmatch(out); m != nil {
		r.P99, _ = time.ParseDuration(string(m[1]))
	}
	return r, nil
}
