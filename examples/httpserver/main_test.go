//go:build linux

package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, "httpserver", main) }

// TestHello: GET / over the command answers "Hello, World!" as
// text/plain, on a kept-alive connection; SIGTERM exits 0.
func TestHello(t *testing.T) { serveHello(t, exampletest.Start) }

// TestHelloFallback: where io_uring is refused, it serves on Go's runtime.
func TestHelloFallback(t *testing.T) { serveHello(t, exampletest.StartRefused) }

func serveHello(t *testing.T, start func(*testing.T, string, io.Writer) (*exampletest.Proc, string)) {
	cmd, addr := start(t, "-addr 127.0.0.1:0 -loops 2", nil)
	client := &http.Client{Timeout: 10 * time.Second}
	for range 5 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "Hello, World!" || resp.StatusCode != 200 {
			t.Fatalf("%d %q %v", resp.StatusCode, body, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
			t.Fatalf("Content-Type %q", ct)
		}
	}
	client.CloseIdleConnections()
	exampletest.Stop(t, cmd)
}

// TestServeInProcess: serve returns nil after its context ends, with a
// request in flight allowed to finish.
func TestServeInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, "127.0.0.1:0", 1, func(a net.Addr) { addrs <- a }) }()
	addr := (<-addrs).String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
