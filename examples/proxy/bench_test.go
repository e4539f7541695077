//go:build linux

package main

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// BenchmarkProxyRoundTrip: round trips of 64 bytes on 100 connections
// through the proxy to an echo upstream, all in this process: -mode
// handler, -mode goroutine (spliced io.Copy) and a plain Go net io.Copy
// proxy beside them. One op is one round trip on one connection.
func BenchmarkProxyRoundTrip(b *testing.B) {
	for _, mode := range []string{"handler", "goroutine", "netcopy"} {
		b.Run(mode, func(b *testing.B) { benchProxy(b, mode, 100, 64) })
	}
}

// BenchmarkProxyBulk: one way bulk through the proxy, 1 and 16
// connections, to a sink upstream; SetBytes makes it MB/s.
func BenchmarkProxyBulk(b *testing.B) {
	for _, mode := range []string{"handler", "goroutine", "netcopy"} {
		for _, conns := range []int{1, 16} {
			b.Run(mode+"/"+map[int]string{1: "c1", 16: "c16"}[conns], func(b *testing.B) { benchBulk(b, mode, conns) })
		}
	}
}

// startProxy runs the proxy of mode in front of upstream until the
// benchmark ends, and returns its address.
func startProxy(b *testing.B, mode, upstream string) string {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		switch mode {
		case "handler":
			serveHandler(ctx, "127.0.0.1:0", upstream, 1, func(a string) { addrc <- a })
		case "goroutine":
			serve(ctx, "127.0.0.1:0", upstream, 1, func(a net.Addr) { addrc <- a.String() })
		case "netcopy":
			netCopyProxy(ctx, upstream, addrc)
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-addrc:
		return a
	case <-time.After(10 * time.Second):
		b.Fatal("proxy did not start")
	}
	return ""
}

// netCopyProxy is the proxy on Go's net: io.Copy both ways, half-closes
// carried through.
func netCopyProxy(ctx context.Context, upstream string, addrc chan<- string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	addrc <- ln.Addr().String()
	context.AfterFunc(ctx, func() { ln.Close() })
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			stop := context.AfterFunc(ctx, func() { c.Close(); u.Close() })
			defer stop()
			go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
			io.Copy(c, u)
		}()
	}
}

// goUpstream is an echo (or, sink, a discarding) server on Go's net.
func goUpstream(b *testing.B, sink bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if sink {
					io.Copy(io.Discard, c)
				} else {
					io.Copy(c, c)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func benchProxy(b *testing.B, mode string, conns, size int) {
	addr := startProxy(b, mode, goUpstream(b, false))
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs[i] = c
	}
	msg := make([]byte, size)
	per := b.N/conns + 1
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			for i := 0; i < per; i++ {
				if _, err := c.Write(msg); err != nil {
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*conns)/b.Elapsed().Seconds(), "rt/s")
}

func benchBulk(b *testing.B, mode string, conns int) {
	addr := startProxy(b, mode, goUpstream(b, true))
	const chunk = 256 << 10
	b.SetBytes(chunk)
	per := b.N/conns + 1
	buf := make([]byte, chunk)
	b.ResetTimer()
	var wg sync.WaitGroup
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for i := 0; i < per; i++ {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}
