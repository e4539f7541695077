//go:build linux

package executor

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuTicks returns the CPU time, user and system, the process has used, in
// clock ticks (/proc/self/stat's utime and stime).
func cpuTicks(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+2:])
	utime, err1 := strconv.Atoi(string(f[11]))
	stime, err2 := strconv.Atoi(string(f[12]))
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/self/stat: %s", b)
	}
	return utime + stime
}

// Idle bounds: over idleFor, an idle server makes fewer than maxIdleEnters
// io_uring_enter calls and uses fewer than maxIdleTicks clock ticks (of
// usually 10 ms) of CPU. A loop that woke every millisecond made about
// 1,000 enters a second per loop and used 4-8% of a core.
const (
	idleFor       = 2 * time.Second
	maxIdleEnters = 50
	maxIdleTicks  = 5
)

// freshEnv marks the test process that inFreshProcess started.
const freshEnv = "KASYNC_FRESH_PROCESS"

// inFreshProcess reports whether t runs in a process of its own: if not,
// it runs t's test again in a fresh test process, fails t if that failed
// (with its output), and returns false. What the idle tests measure is the
// whole process's CPU time; in the package's process, what earlier tests
// left (the GC and the scavenger returning a large heap, for seconds) costs
// more CPU than the idle server itself.
func inFreshProcess(t *testing.T) bool {
	t.Helper()
	if os.Getenv(freshEnv) != "" {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), freshEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in a fresh process: %v\n%s", t.Name(), err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "idle_test.go") {
			t.Log(line)
		}
	}
	return false
}

// checkIdle measures the process for idleFor and fails if enters (the
// server's count) or the CPU time grew past the idle bounds.
func checkIdle(t *testing.T, enters func() uint64) {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(100 * time.Millisecond)
	e0, c0 := enters(), cpuTicks(t)
	time.Sleep(idleFor)
	de, dc := enters()-e0, cpuTicks(t)-c0
	t.Logf("idle %v: %d enters, %d CPU ticks", idleFor, de, dc)
	if de >= maxIdleEnters || dc >= maxIdleTicks {
		t.Errorf("idle %v: %d io_uring_enter calls (want < %d), %d CPU ticks (want < %d)",
			idleFor, de, maxIdleEnters, dc, maxIdleTicks)
	}
}

// An idle Serve, with ServeKeepP and without, sleeps: after a connection's
// round trip, with that connection open and idle, its loops make next to
// no enters and use next to no CPU.
func TestServeIdleSleeps(t *testing.T) {
	if !inFreshProcess(t) {
		return
	}
	for _, tc := range []struct {
		name string
		opts []ServeOption
	}{
		{"default", nil},
		{"keepP", []ServeOption{ServeKeepP()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, e *Executor) {
				s := hServe(t, e, &hFuncs{}, append([]ServeOption{ServeLoops(2)}, tc.opts...)...)
				c := hDial(t, s)
				hRoundTrip(t, c, []byte("ping"))
				checkIdle(t, func() uint64 { return s.Stats().Enters })
				hRoundTrip(t, c, []byte("still serving"))
			})
		})
	}
}

// The goroutine loops sleep too: a Listener with an Accept waiting and a
// Conn with a Read waiting make next to no enters and use next to no CPU.
func TestListenIdleSleeps(t *testing.T) {
	if !inFreshProcess(t) {
		return
	}
	forEachBackend(t, func(t *testing.T, e *Executor) {
		ln, err := e.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 2)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- c
			}
		}()
		c, err := e.Dial(t.Context(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sc := <-accepted
		defer sc.Close()
		read := make(chan error, 1)
		go func() {
			_, err := sc.Read(make([]byte, 16))
			read <- err
		}()
		checkIdle(t, func() uint64 { return e.Stats().Enters })
		if _, err := c.Write([]byte("wake")); err != nil {
			t.Fatal(err)
		}
		if err := <-read; err != nil {
			t.Fatal(err)
		}
		ln.Close()
		for range accepted {
		}
	})
}
