//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"
)

// TestSoak runs mixed load (ping-pong clients, resets, half-closes) against
// both modes for KASYNC_SOAK (a duration, e.g. 10m), then checks that the
// servers hold no more descriptors than at the start, that their memory
// settled, and that they still answer. Off unless KASYNC_SOAK is set.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("KASYNC_SOAK"))
	if err != nil {
		t.Skip("set KASYNC_SOAK=10m to run the soak test")
	}
	type server struct {
		mode      string
		p         *exampletest.Proc
		addr      string
		fds, rss  int
		peakRSS   int
		exchanges int
	}
	var servers []*server
	for _, mode := range []string{"conn", "handler"} {
		p, addr := exampletest.Start(t, "-addr 127.0.0.1:0 -loops 1 -mode "+mode, nil)
		exampletest.EchoOnce(t, addr, "warm up")
		servers = append(servers, &server{mode: mode, p: p, addr: addr,
			fds: exampletest.FDs(t, p.Process.Pid), rss: exampletest.RSS(t, p.Process.Pid)})
	}
	end := time.Now().Add(d)
	for round := 0; time.Now().Before(end); round++ {
		for _, s := range servers {
			if err := soakRound(s.addr, round); err != nil {
				t.Fatalf("%s, round %d: %v", s.mode, round, err)
			}
			s.exchanges += 20 * 50
			s.peakRSS = max(s.peakRSS, exampletest.RSS(t, s.p.Process.Pid))
		}
	}
	for _, s := range servers {
		pid := s.p.Process.Pid
		exampletest.EchoOnce(t, s.addr, "still here")
		exampletest.WaitFDs(t, pid, s.fds)
		t.Logf("%s: %v, %d round trips; fds %d -> %d; RSS %d KiB at start, peak %d KiB, end %d KiB",
			s.mode, d, s.exchanges, s.fds, exampletest.FDs(t, pid), s.rss, s.peakRSS, exampletest.RSS(t, pid))
		exampletest.Stop(t, s.p)
	}
}

// soakRound: 20 clients of 50 round trips each, 20 resets mid-message and
// 5 half-closes, all at once.
func soakRound(addr string, round int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			msg := []byte(fmt.Sprintf("round %d client %d: %s", round, i, bytes.Repeat([]byte{'x'}, i*50)))
			got := make([]byte, len(msg))
			for range 50 {
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("echo: %q, %v", got, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Write(make([]byte, 1000+i))
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}()
	}
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			msg := bytes.Repeat([]byte("half"), 5000)
			go func() { c.Write(msg); c.(*net.TCPConn).CloseWrite() }()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("half-close: %d bytes back of %d, %v", len(got), len(msg), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
