//go:build linux

package main

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, "udpecho", main) }

// udpEchoOnce sends msg to addr and expects it back.
func udpEchoOnce(t *testing.T, addr string, msg []byte) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 70000)
	n, err := c.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("echo of %d bytes: got %d, %v", len(msg), n, err)
	}
}

// TestModes runs both modes in process: echo of small and large
// datagrams, then stop.
func TestModes(t *testing.T) {
	for _, mode := range []string{"handler", "conn"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			addrs := make(chan net.Addr, 1)
			done := make(chan error, 1)
			go func() { done <- serve(ctx, mode, "127.0.0.1:0", 2, 65507, false, func(a net.Addr) { addrs <- a }) }()
			var addr net.Addr
			select {
			case addr = <-addrs:
			case err := <-done:
				t.Fatal(err)
			}
			for _, n := range []int{1, 1472, 65507} {
				udpEchoOnce(t, addr.String(), bytes.Repeat([]byte{'u'}, n))
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSignal runs the command, echoes through it, and stops it with
// SIGTERM: it exits 0. Also where io_uring is refused.
func TestSignal(t *testing.T) {
	for _, args := range []string{"-addr 127.0.0.1:0", "-addr 127.0.0.1:0 -loops 1 -mode conn"} {
		p, addr := exampletest.Start(t, args, nil)
		udpEchoOnce(t, addr, []byte("over the command"))
		exampletest.Stop(t, p)
	}
	p, addr := exampletest.StartRefused(t, "-addr 127.0.0.1:0 -loops 2", nil)
	udpEchoOnce(t, addr, []byte("on Go's net"))
	exampletest.Stop(t, p)
}
