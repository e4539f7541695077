//go:build linux

package executor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// wantAddrInUse fails unless err is a listen *net.OpError for EADDRINUSE,
// as net.Listen returns on a port in use.
func wantAddrInUse(t *testing.T, what string, err error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "listen" || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("%s on a port in use: %v (%T), want a listen *net.OpError for EADDRINUSE", what, err, err)
	}
}

// portInUse checks every way of listening on addr, which a socket holds:
// Serve (one loop and several), Listen, and Listen and ListenPacket with
// WithReusePort fail with EADDRINUSE.
func portInUse(t *testing.T, e *Executor, addr string) {
	t.Helper()
	for _, loops := range []int{1, 2} {
		s, err := e.Serve("tcp", addr, &hFuncs{}, ServeLoops(loops))
		if err == nil {
			s.Close()
		}
		wantAddrInUse(t, fmt.Sprintf("Serve with %d loops", loops), err)
	}
	for _, opts := range [][]NetOption{nil, {WithReusePort()}} {
		ln, err := e.Listen("tcp", addr, opts...)
		if err == nil {
			ln.Close()
		}
		wantAddrInUse(t, fmt.Sprintf("Listen with %d options", len(opts)), err)
	}
}

// A port in use, by net, by another Serve or by a Listen with WithReusePort
// of the same process, fails every Serve and Listen as net.Listen does;
// ServeSharePort and WithSharePort share it with servers that shared it.
func TestPortInUse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		portInUse(t, e, ln.Addr().String())
		ln.Close()

		s := hServe(t, e, &hFuncs{}, ServeLoops(2))
		portInUse(t, e, s.Addr().String())

		rl, err := e.Listen("tcp", "127.0.0.1:0", WithReusePort())
		if err != nil {
			t.Fatal(err)
		}
		portInUse(t, e, rl.Addr().String())
		rl.Close()

		pc, err := e.ListenPacket("udp", "127.0.0.1:0", WithReusePort())
		if err != nil {
			t.Fatal(err)
		}
		pc2, err := e.ListenPacket("udp", pc.LocalAddr().String(), WithReusePort())
		if err == nil {
			pc2.Close()
		}
		wantAddrInUse(t, "ListenPacket with WithReusePort", err)
		pc2, err = e.ListenPacket("udp", pc.LocalAddr().String(), WithSharePort())
		if err != nil {
			t.Fatalf("ListenPacket with WithSharePort: %v", err)
		}
		pc2.Close()
		pc.Close()

		// Sharing, asked for by both.
		s1 := hServe(t, e, &hFuncs{}, ServeLoops(2), ServeSharePort())
		addr := s1.Addr().String()
		s2, err := e.Serve("tcp", addr, &hFuncs{}, ServeLoops(1), ServeSharePort())
		if err != nil {
			t.Fatalf("Serve with ServeSharePort: %v", err)
		}
		defer s2.Close()
		s3, err := e.Serve("tcp", addr, &hFuncs{}, ServeSharePort())
		if err != nil {
			t.Fatalf("Serve with ServeSharePort: %v", err)
		}
		s3.Close()
		sl, err := e.Listen("tcp", addr, WithReusePort(), WithSharePort())
		if err != nil {
			t.Fatalf("Listen with WithSharePort: %v", err)
		}
		sl.Close()
		portInUse(t, e, addr)                 // still, for those that do not ask
		for _, s := range []*Server{s1, s2} { // both serve, on one port
			c := hDial(t, s)
			c.Write([]byte("ping"))
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo %q, %v", buf, err)
			}
		}
	})
}

func init() {
	// portHolder serves with ServeSharePort (KASYNC_SHARE set) or without,
	// prints its address and holds it until its standard input closes.
	childFuncs["portHolder"] = func() error {
		e, err := New()
		if err != nil {
			return err
		}
		defer e.Close()
		opts := []ServeOption{ServeLoops(2)}
		if os.Getenv("KASYNC_SHARE") != "" {
			opts = append(opts, ServeSharePort())
		}
		s, err := e.Serve("tcp", "127.0.0.1:0", &hFuncs{}, opts...)
		if err != nil {
			return err
		}
		fmt.Println(s.Addr())
		holdUntilStdinCloses()
		return s.Close()
	}
}

// A port another process serves on fails Serve and Listen here; sharing it
// takes ServeSharePort on both sides.
func TestPortInUseByAnotherProcess(t *testing.T) {
	plain := startChild(t, "portHolder")
	shared := startChild(t, "portHolder", "KASYNC_SHARE=1")
	forEachBackend(t, func(t *testing.T, e *Executor) {
		portInUse(t, e, plain)
		portInUse(t, e, shared)
		s, err := e.Serve("tcp", shared, &hFuncs{}, ServeSharePort())
		if err != nil {
			t.Fatalf("ServeSharePort on a port another process shares: %v", err)
		}
		s.Close()
	})
}
