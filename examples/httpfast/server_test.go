package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kasync-go/kasync/executor"
)

func startServer(t *testing.T) string {
	t.Helper()
	e, err := executor.New(executor.WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	srv, err := e.Serve("tcp", "127.0.0.1:0", newServer(), executor.ServeLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr().String()
}

func TestServerWithNetHTTPClient(t *testing.T) {
	addr := startServer(t)
	for i := range 20 {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "Hello, World!" || resp.Header.Get("Date") == "" ||
			resp.ContentLength != 13 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("request %d: %v %q %v", i, resp.Status, body, resp.Header)
		}
		if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get("http://" + addr + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("status %v", resp.Status)
	}
	resp, err = http.Post("http://"+addr+"/", "text/plain", strings.NewReader("a body"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("status %v", resp.Status)
	}
}

// Pipelined requests, split at odd places, answered in order; then a
// request with Connection: close ends the connection.
func TestServerPipelining(t *testing.T) {
	addr := startServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reqs := strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcHEAD / HTTP/1.1\r\n\r\n", 50) +
		"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
	go func() {
		for i := 0; i < len(reqs); i += 7 {
			c.Write([]byte(reqs[i:min(i+7, len(reqs))]))
			time.Sleep(10 * time.Microsecond)
		}
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 151 {
		method := []string{"GET", "POST", "HEAD"}[i%3]
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		want := map[string]int{"GET": 200, "POST": 405, "HEAD": 200}[method]
		if resp.StatusCode != want || (method == "GET" && string(body) != "Hello, World!") || (method == "HEAD" && len(body) != 0) {
			t.Fatalf("response %d to %s: %v %q", i, method, resp.Status, body)
		}
		if i == 150 && !resp.Close {
			t.Fatal("last response does not say Connection: close")
		}
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after Connection: close: %d, %v", n, err)
	}
}

func TestServerBadRequest(t *testing.T) {
	addr := startServer(t)
	for req, want := range map[string]string{
		"BAD\r\n\r\n": "400",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n": "501",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(req))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(got), "HTTP/1.1 "+want) || !strings.Contains(string(got), "Connection: close") {
			t.Fatalf("%q: %q", req, got)
		}
	}
}

// A keep-alive request costs no allocation, server and client together.
func TestServerAllocatesNothing(t *testing.T) {
	addr := startServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for n < 4 || string(buf[n-13:n]) != "Hello, World!" {
			m, err := c.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
		}
	}
	for range 100 {
		roundTrip()
	}
	if a := testing.AllocsPerRun(1000, roundTrip); a != 0 {
		t.Fatalf("%v allocations per request", a)
	}
}
