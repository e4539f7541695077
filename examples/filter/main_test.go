//go:build linux

package main

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, "filter", main) }

// syncBuffer collects what the command prints after its first line.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestFilter: clients from 127.0.0.1 get echo, clients from 127.0.0.2 are
// dropped and counted; SIGTERM exits 0.
func TestFilter(t *testing.T) { filterTest(t, exampletest.Start) }

// TestFilterFallback: where io_uring is refused, the filter still drops.
func TestFilterFallback(t *testing.T) { filterTest(t, exampletest.StartRefused) }

func filterTest(t *testing.T, start func(*testing.T, string, io.Writer) (*exampletest.Proc, string)) {
	var output syncBuffer
	cmd, addr := start(t, "-addr 127.0.0.1:0 -allow 127.0.0.1/32", &output)
	exampletest.EchoOnce(t, addr, "allowed")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("let me in"))
	if n, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatalf("dropped client read %d bytes", n)
	}
	c.Close()
	exampletest.EchoOnce(t, addr, "allowed again") // the dropped one was seen by now
	exampletest.Stop(t, cmd)
	if !strings.Contains(output.String(), "dropped 1 connections") {
		t.Fatalf("output: %q", output.String())
	}
}

func TestParsePrefixes(t *testing.T) {
	ps, err := parsePrefixes("127.0.0.1/8, ::1/128")
	if err != nil || len(ps) != 2 || ps[0].String() != "127.0.0.0/8" {
		t.Fatalf("%v %v", ps, err)
	}
	if _, err := parsePrefixes("nonsense"); err == nil {
		t.Fatal("parsed nonsense")
	}
}
