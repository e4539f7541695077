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

func proxy(t *testing.T, start func(*testing.T, string, io.Writer) (*exampletest.Proc, string)) {
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
	cmd, addr := start(t, "-listen 127.0.0.1:0 -to "+up.Addr().String(), nil)
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
