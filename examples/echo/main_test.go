//go:build linux

package main

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, "echo", main) }

// TestModes runs every registered mode in process: echo, then stop.
func TestModes(t *testing.T) {
	for name, serve := range modes {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			addrs := make(chan net.Addr, 1)
			done := make(chan error, 1)
			go func() { done <- serve(ctx, "127.0.0.1:0", 2, func(a net.Addr) { addrs <- a }) }()
			var addr net.Addr
			select {
			case addr = <-addrs:
			case err := <-done:
				t.Fatal(err)
			}
			for range 3 {
				exampletest.EchoOnce(t, addr.String(), "hello "+name)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSignal runs the command, echoes through it, and stops it with
// SIGTERM: it exits 0.
func TestSignal(t *testing.T) {
	for _, args := range []string{"-addr 127.0.0.1:0", "-addr 127.0.0.1:0 -loops 1 -mode conn"} {
		cmd, addr := exampletest.Start(t, args, nil)
		exampletest.EchoOnce(t, addr, "over the command")
		open, err := net.Dial("tcp", addr) // left open: the grace period ends it
		if err != nil {
			t.Fatal(err)
		}
		exampletest.EchoOn(t, open, "still open")
		go func() { time.Sleep(100 * time.Millisecond); open.Close() }()
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("echo %s: exit: %v", args, err)
		}
	}
}

// TestFallback: where io_uring is refused, both modes still echo, on Go's
// runtime, and SIGTERM still exits 0.
func TestFallback(t *testing.T) {
	for _, mode := range []string{"conn", "handler"} {
		p, addr := exampletest.StartRefused(t, "-addr 127.0.0.1:0 -loops 1 -mode "+mode, nil)
		exampletest.EchoOnce(t, addr, "no io_uring here")
		exampletest.Stop(t, p)
	}
}

// TestStrictRefused: with -strict where io_uring is refused, the server
// does not start, and says why in words a user can act on.
func TestStrictRefused(t *testing.T) {
	out, err := exampletest.RunRefused("-addr 127.0.0.1:0 -strict")
	if err == nil {
		t.Fatalf("started where io_uring is refused, with -strict: %s", out)
	}
	if !strings.Contains(out, "seccomp") || !strings.Contains(out, "io_uring") {
		t.Fatalf("the error does not say why: %s", out)
	}
}
