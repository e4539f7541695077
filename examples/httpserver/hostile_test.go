//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"
)

const request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

// TestHostileClients runs net/http on kasync's listener against peers that
// misbehave, then checks it still answers, holds no more descriptors than
// before, and kept its memory bounded.
func TestHostileClients(t *testing.T) {
	p, addr := exampletest.Start(t, "-addr 127.0.0.1:0 -loops 1", nil)
	pid := p.Process.Pid
	get(t, addr)
	baseFDs, baseRSS := exampletest.FDs(t, pid), exampletest.RSS(t, pid)

	const n = 1000
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	for i := range n {
		run(func() { // reset in the middle of a request
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			c.Write([]byte(request[:i%len(request)]))
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		})
		run(func() { // connect and vanish
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
			}
		})
	}
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for range 20 {
		run(func() { // a request, then half-close: the answer still comes
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			c.Write([]byte(request))
			c.(*net.TCPConn).CloseWrite()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				fail(fmt.Errorf("half-close: %v", err))
				return
			}
			body, _ := io.ReadAll(resp.Body)
			if string(body) != "Hello, World!" {
				fail(fmt.Errorf("half-close: body %q", body))
			}
		})
	}
	// Slowloris: the request a byte every 10 ms, still answered.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(request) {
		slow.Write([]byte{request[i]})
		time.Sleep(10 * time.Millisecond)
	}
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(slow), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("slowloris: %v", err)
	}
	slow.Close()
	wg.Wait()
	// With the hostile wave over, a client that tries to pipeline 1 GiB of
	// requests and never reads the answers: the server must stop reading,
	// not queue responses.
	quietRSS := exampletest.RSS(t, pid)
	var peakRSS int
	batch := []byte(strings.Repeat(request, 1<<20/len(request)))
	sent := exampletest.NeverReads(t, addr, batch, 1<<30, func() { peakRSS = exampletest.RSS(t, pid) })
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if sent >= 1<<30 {
		t.Fatalf("the server took all %d bytes of requests from a client that never reads", sent)
	}
	if grown := peakRSS - quietRSS; grown > 64<<10 && !exampletest.Race { // a sixteenth of the stream
		t.Fatalf("server RSS grew by %d KiB under a client that never reads", grown)
	}
	get(t, addr)
	exampletest.WaitFDs(t, pid, baseFDs)
	t.Logf("%d resets, %d vanished, 20 half-closes, a slowloris; the never-reading client got %d KiB in; RSS %d KiB at start, %d after the wave, %d with it stuck; fds %d -> %d",
		n, n, sent>>10, baseRSS, quietRSS, peakRSS, baseFDs, exampletest.FDs(t, pid))
	exampletest.Stop(t, p)
}

func get(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "Hello, World!" {
		t.Fatalf("body %q", body)
	}
}
