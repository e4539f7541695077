//go:build linux

package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/seccomp"
	"github.com/kasync-go/kasync/ring"
)

// TestLateCQENeverWakesNewOwner sends a CQE carrying a slot's previous
// generation while a new owner waits on that slot.
func TestLateCQENeverWakesNewOwner(t *testing.T) {
	e := newTestExecutor(t, WithLoops(1))
	l := e.loops[0]
	old, err := l.start(func(s *ring.SQE, _ *op) { s.PrepNop() }, startSpec{})
	if err != nil {
		t.Fatal(err)
	}
	old.wait(context.Background())
	oldUD := old.userData()
	l.release(old)

	// The new owner of the same slot waits on a long timeout.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- e.Sleep(ctx, time.Hour) }()
	deadline := time.Now().Add(5 * time.Second)
	for e.Stats().InFlight == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	l.mu.Lock()
	if l.table.ops[0].userData() == oldUD || !l.table.ops[0].inFlight() {
		l.mu.Unlock()
		t.Fatal("slot 0 was not reused by the sleeper")
	}
	sqe, _ := l.sqeLocked()
	sqe.PrepNop()
	sqe.UserData = oldUD // a stray completion for the old generation
	l.queueLocked()
	l.submitLocked()
	l.mu.Unlock()

	deadline = time.Now().Add(5 * time.Second)
	for e.Stats().Stale == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if e.Stats().Stale != 1 {
		t.Fatalf("stale CQEs = %d, want 1", e.Stats().Stale)
	}
	select {
	case err := <-res:
		t.Fatalf("the new owner woke up: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if err := <-res; err == nil {
		t.Fatal("cancelled sleep returned nil")
	}
}

func fdCount(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestCloseLeavesNoFds(t *testing.T) {
	before := fdCount(t)
	for range 3 {
		e, err := New(WithStrict(), WithLoops(2))
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			e.Spawn(func(ctx context.Context) error { return e.Sleep(ctx, time.Hour) })
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := fdCount(t); after != before {
		t.Fatalf("fds before %d, after %d", before, after)
	}
}

func init() {
	childFuncs["fallback"] = func() error {
		if err := seccomp.RefuseIOUring(); err != nil {
			return err
		}
		var logged bytes.Buffer
		e, err := New(WithLogger(slog.New(slog.NewJSONHandler(&logged, nil))))
		if err != nil {
			return err
		}
		defer e.Close()
		if err := e.Sleep(context.Background(), time.Millisecond); err != nil {
			return err
		}
		tk, _ := e.Spawn(func(context.Context) error { return nil })
		if err := tk.Wait(); err != nil {
			return err
		}
		_, strictErr := New(WithStrict())
		// One warning, the cause an attribute of its own.
		var warned []map[string]any
		for line := range strings.Lines(logged.String()) {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				return fmt.Errorf("log line %q: %v", line, err)
			}
			if rec["level"] == "WARN" {
				warned = append(warned, rec)
			}
		}
		if len(warned) != 1 {
			return fmt.Errorf("want one warning, logged:\n%s", logged.String())
		}
		if cause, _ := warned[0]["cause"].(string); !strings.Contains(cause, "seccomp") || warned[0]["errno"] == nil {
			return fmt.Errorf("warning without cause or errno: %v", warned[0])
		}
		if r := e.Stats().BackendReason; !strings.Contains(r, "seccomp") {
			return fmt.Errorf("Stats().BackendReason = %q", r)
		}
		os.Stdout.WriteString(string(e.Backend()) + " warnings=" + strconv.Itoa(len(warned)) + " strict=" + errString(strictErr) + "\n")
		return nil
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestFallbackWhenIOURingRefused(t *testing.T) {
	out := runInChild(t, "fallback")
	if !strings.HasPrefix(out, "go warnings=1 ") {
		t.Fatalf("child: %s", out)
	}
	if !strings.Contains(out, "io_uring unavailable") || !strings.Contains(out, "seccomp") {
		t.Fatalf("strict error does not say why: %s", out)
	}
}

// TestCloseClosesWhatTheUserLeftOpen: listeners, conns and files left open
// are closed by the executor's Close; no descriptor stays behind.
func TestCloseClosesWhatTheUserLeftOpen(t *testing.T) {
	before := fdCount(t)
	e, err := New(WithStrict(), WithLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("unread"))
	go s.Read(make([]byte, 1)) // consumes one byte, then its next Read blocks
	f, err := e.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	_ = f
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fdCount(t) != before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if after := fdCount(t); after != before {
		ents, _ := os.ReadDir("/proc/self/fd")
		var links []string
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			links = append(links, e.Name()+"->"+l)
		}
		t.Fatalf("fds before %d, after Close %d: %v", before, after, links)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write on a conn closed by the executor succeeded")
	}
}
