//go:build linux

package executor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Connection controls of the fast path, each on both backends with one
// body: CloseWrite with output queued, Control, the loop's identity,
// OnDrain, OnShutdown and NopHandler.

// TestServeCloseWriteAfterQueuedOutput: CloseWrite sends every byte queued
// before it, then the FIN; the connection keeps receiving until the peer's
// FIN; Write after CloseWrite says EPIPE.
func TestServeCloseWriteAfterQueuedOutput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		var got bytes.Buffer
		var mu sync.Mutex
		writeErr := make(chan error, 1)
		h := &hFuncs{data: func(c *HConn, d []byte) int {
			mu.Lock()
			first := got.Len() == 0
			got.Write(d)
			mu.Unlock()
			if first {
				c.Write(payload)
				c.CloseWrite()
				_, err := c.Write([]byte("late"))
				writeErr <- err
			}
			return len(d)
		}}
		s := hServe(t, e, h, ServeLoops(1), ServeOutputLimit(64<<10))
		c := hDial(t, s)
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write([]byte("go")); err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(c) // to the server's FIN
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, payload) {
			t.Fatalf("read %d bytes before EOF, want the %d queued before CloseWrite", len(back), len(payload))
		}
		if err := <-writeErr; !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("Write after CloseWrite: %v, want EPIPE", err)
		}
		// The server still receives after its CloseWrite.
		if _, err := c.Write([]byte(" and more")); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
		mu.Lock()
		defer mu.Unlock()
		if got.String() != "go and more" {
			t.Fatalf("server received %q", got.String())
		}
		if errs := h.closeErrs(); errs[0] != io.EOF {
			t.Fatalf("OnClose: %v, want io.EOF", errs[0])
		}
	})
}

// TestServeControlAndLoop: Control reaches the socket (an option set in it
// is read back), and each connection knows its loop, which OnTick names.
func TestServeControlAndLoop(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		type seen struct {
			loop   int
			buf    int
			ctlErr error
		}
		res := make(chan seen, 8)
		h := &loopTicker{hFuncs: hFuncs{open: func(c *HConn) {
			var v int
			err := c.Control(func(fd uintptr) {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10)
				v, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
			})
			res <- seen{c.Loop(), v, err}
		}}}
		s := hServe(t, e, h, ServeLoops(2))
		for range 4 {
			hRoundTrip(t, hDial(t, s), []byte("x"))
			r := <-res
			if r.ctlErr != nil || r.buf < 64<<10 {
				t.Fatalf("Control: %v, SO_SNDBUF read back %d", r.ctlErr, r.buf)
			}
			if r.loop < 0 || r.loop >= 2 {
				t.Fatalf("Loop() = %d with 2 loops", r.loop)
			}
		}
		hWaitFor(t, "a tick on each loop", func() bool { return h.loops.Load() == 3 })
	})
}

// loopTicker records which loops OnTick ran on (bit i: loop i).
type loopTicker struct {
	hFuncs
	loops atomic.Int64
}

func (h *loopTicker) OnTick(loop int, _ time.Time) time.Duration {
	for {
		old := h.loops.Load()
		if h.loops.CompareAndSwap(old, old|1<<loop) {
			return 0
		}
	}
}

// drainer is a handler that floods a connection and counts OnDrain.
type drainer struct {
	hFuncs
	drains atomic.Int64
}

func (h *drainer) OnDrain(*HConn) { h.drains.Add(1) }

// TestServeOnDrain: a connection whose output went over the limit, and one
// whose AsyncWrite was refused, get OnDrain once the reader caught up.
func TestServeOnDrain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		const limit = 64 << 10
		conns := make(chan *HConn, 1)
		h := &drainer{hFuncs: hFuncs{open: func(c *HConn) {
			// Small socket buffers, so the kernel cannot take it all.
			c.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 4096) })
			c.Write(make([]byte, 64*limit)) // over the limit at once
			conns <- c
		}}}
		s := hServe(t, e, h, ServeLoops(1), ServeOutputLimit(limit))
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		}}
		c, err := d.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hc := <-conns
		var refused bool
		for range 1000 {
			if err := hc.AsyncWrite(make([]byte, limit)); errors.Is(err, ErrOutputFull) {
				refused = true
				break
			}
		}
		if !refused {
			t.Fatal("AsyncWrite never said ErrOutputFull with the reader stopped")
		}
		if n := h.drains.Load(); n != 0 {
			t.Fatalf("%d OnDrain before the reader read", n)
		}
		go io.Copy(io.Discard, c)
		hWaitFor(t, "OnDrain", func() bool { return h.drains.Load() >= 1 })
	})
}

// notifier closes every connection at Shutdown's start.
type notifier struct {
	hFuncs
	told atomic.Int64
}

func (h *notifier) OnShutdown(c *HConn) {
	h.told.Add(1)
	c.Close()
}

// TestServeShutdownNotifies: Shutdown tells the handler about each open
// connection, so idle ones close at once and Shutdown returns before its
// context ends.
func TestServeShutdownNotifies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		h := &notifier{}
		s := hServe(t, e, h, ServeLoops(2))
		var cs []net.Conn
		for range 3 {
			c := hDial(t, s)
			hRoundTrip(t, c, []byte("idle from now on"))
			cs = append(cs, c)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown with idle conns told to close: %v", err)
		}
		if h.told.Load() != 3 || h.closed.Load() != 3 {
			t.Fatalf("OnShutdown %d times, OnClose %d, want 3 and 3", h.told.Load(), h.closed.Load())
		}
		for _, c := range cs {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("client read after Shutdown: %v, want EOF", err)
			}
		}
	})
}

// TestNopHandlerEmbeds: a handler that embeds NopHandler and overrides
// OnData only is served.
func TestNopHandlerEmbeds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s := hServe(t, e, upper{}, ServeLoops(1))
		c := hDial(t, s)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("abc"))
		got := make([]byte, 3)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "ABC" {
			t.Fatalf("%q %v", got, err)
		}
	})
}

type upper struct{ NopHandler }

func (upper) OnData(c *HConn, d []byte) int {
	c.Write(bytes.ToUpper(d))
	return len(d)
}
