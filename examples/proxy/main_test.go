//go:build linux

package main

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/kasync-go/kasync/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, "proxy", main) }

// TestProxy: bytes go through the command to an upstream echo server and
// back unchanged, each way spliced; SIGTERM exits 0.
func TestProxy(t *testing.T) { proxy(t, exampletest.Start) }

// TestProxyFallback: where io_uring is refused, it proxies on Go's runtime.
func TestProxyFallback(t *testing.T) { proxy(t, exampletest.StartRefused) }

// TestProxyHandler: the same through -mode handler, the fast path.
func TestProxyHandler(t *testing.T) { proxyMode(t, exampletest.Start, "-mode handler") }

// TestProxyHandlerFallback: -mode handler on Go's runtime.
func TestProxyHandlerFallback(t *testing.T) { proxyMode(t, exampletest.StartRefused, "-mode handler") }

// TestProxyHandlerBounded: a client that never reads what the upstream
// echoes back stalls the proxy both ways (its memory bounded) instead of
// making it buffer: backpressure from one end to the other and back.
func TestProxyHandlerBounded(t *testing.T) {
	up := echoUpstream(t)
	cmd, addr := exampletest.Start(t, "-mode handler -loops 1 -listen 127.0.0.1:0 -to "+up, nil)
	before := exampletest.RSS(t, cmd.Process.Pid)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var during int
	sent := exampletest.NeverReads(t, addr, chunk, 1<<30, func() { during = exampletest.RSS(t, cmd.Process.Pid) })
	if sent >= 1<<30 {
		t.Fatalf("the proxy took all %d bytes from a client that never reads", sent)
	}
	if grew := during - before; !exampletest.Race && grew > 48<<10 {
		t.Fatalf("RSS grew by %d KiB while %d KiB were stuck", grew, sent>>10)
	}
	t.Logf("took %d KiB before stalling; RSS %d KiB -> %d KiB", sent>>10, before, during)
	exampletest.EchoOnce(t, addr, "still there")
	exampletest.Stop(t, cmd)
}

func echoUpstream(t *testing.T) string {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return up.Addr().String()
}

func proxy(t *testing.T, start func(*testing.T, string, io.Writer) (*exampletest.Proc, string)) {
	proxyMode(t, start, "")
}

func proxyMode(t *testing.T, start func(*testing.T, string, io.Writer) (*exampletest.Proc, string), mode string) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	cmd, addr := start(t, mode+" -listen 127.0.0.1:0 -to "+up.Addr().String(), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("kasync proxy "), 100000)
	go func() {
		c.Write(want)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes back (want %d), %v", len(got), len(want), err)
	}
	c.Close()
	exampletest.EchoOnce(t, addr, "once more")
	exampletest.Stop(t, cmd)
}
