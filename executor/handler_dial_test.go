//go:build linux

package executor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Outbound (Server.Dial) and adopted (Server.Adopt) connections on the
// fast path, each on both backends with one body.

// echoListener is a goroutine echo server; it is closed when the test ends.
func echoListener(t *testing.T, network, address string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln
}

// dialResult is what a dialed connection's handler saw.
type dialResult struct {
	opened bool
	echo   string
	err    error
	loop   int
}

// dialEcho dials address from s's loop 0 with a handler that writes "ping",
// waits for it back and closes; it returns what the handler saw.
func dialEcho(t *testing.T, s *Server, ctx context.Context, network, address string) dialResult {
	t.Helper()
	done := make(chan dialResult, 1)
	var r dialResult
	var got []byte
	h := &hFuncs{
		open: func(c *HConn) {
			r.opened = true
			r.loop = c.Loop()
			c.Write([]byte("ping"))
		},
		data: func(c *HConn, d []byte) int {
			got = append(got, d...)
			if len(got) >= 4 {
				c.Close()
			}
			return len(d)
		},
		close: func(c *HConn, err error) {
			r.echo, r.err = string(got), err
			done <- r
		},
	}
	if err := s.Dial(ctx, 0, network, address, h); err != nil {
		t.Fatalf("Dial: %v", err)
	}
	select {
	case r := <-done:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no OnClose from the dialed connection")
	}
	return r
}

// TestServeDialSucceeded: a dialed connection is a fast-path connection of
// its loop, served by its own handler, over TCP (a literal address and a
// name) and Unix.
func TestServeDialSucceeded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s := hServe(t, e, NopHandler{}, ServeLoops(2))
		ln := echoListener(t, "tcp", "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		uln := echoListener(t, "unix", filepath.Join(t.TempDir(), "echo.sock"))
		for _, tc := range []struct{ network, address string }{
			{"tcp", ln.Addr().String()},
			{"tcp4", "localhost:" + port},
			{"tcp", ":" + port},
			{"unix", uln.Addr().String()},
		} {
			r := dialEcho(t, s, context.Background(), tc.network, tc.address)
			if !r.opened || r.echo != "ping" || r.err != nil || r.loop != 0 {
				t.Fatalf("%s %s: opened %v, echo %q, OnClose %v, loop %d", tc.network, tc.address, r.opened, r.echo, r.err, r.loop)
			}
		}
		if st := s.Stats(); st.Conns != 0 {
			t.Fatalf("%d conns left", st.Conns)
		}
	})
}

// TestServeDialRefused: OnClose with ECONNREFUSED in a *net.OpError, as
// net.Dial says it, and no OnOpen.
func TestServeDialRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s := hServe(t, e, NopHandler{}, ServeLoops(1))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		r := dialEcho(t, s, context.Background(), "tcp", addr)
		var oe *net.OpError
		if r.opened || !errors.As(r.err, &oe) || oe.Op != "dial" || !errors.Is(r.err, syscall.ECONNREFUSED) {
			t.Fatalf("opened %v, OnClose %v (%T), want a dial *net.OpError with ECONNREFUSED", r.opened, r.err, r.err)
		}
		if oe.Addr == nil || oe.Addr.String() != addr {
			t.Fatalf("error's address %v, want %s", oe.Addr, addr)
		}
		_, nerr := net.Dial("tcp", addr)
		if r.err.Error() != nerr.Error() {
			t.Logf("net says %q, Server.Dial %q", nerr, r.err) // the local port differs
		}
	})
}

// fullBacklog returns the address of a listener whose accept queue is full,
// so that a connect to it hangs (the kernel drops its SYNs).
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}).String()
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full: this one timed out
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the listener's backlog never filled")
	return ""
}

// TestServeDialTimeout: a ctx deadline fails the connect with an error for
// which errors.Is(err, os.ErrDeadlineExceeded) holds, in time; a cancelled
// ctx with its cause.
func TestServeDialTimeout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s := hServe(t, e, NopHandler{}, ServeLoops(1))
		addr := fullBacklog(t)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		r := dialEcho(t, s, ctx, "tcp", addr)
		took := time.Since(start)
		var oe *net.OpError
		if r.opened || !errors.As(r.err, &oe) || !errors.Is(r.err, os.ErrDeadlineExceeded) || !oe.Timeout() {
			t.Fatalf("opened %v, OnClose %v, want a dial timeout", r.opened, r.err)
		}
		if took > 5*time.Second {
			t.Fatalf("the timeout took %v", took)
		}

		cctx, ccancel := context.WithCancelCause(context.Background())
		why := errors.New("given up")
		time.AfterFunc(50*time.Millisecond, func() { ccancel(why) })
		r = dialEcho(t, s, cctx, "tcp", addr)
		if r.opened || !errors.Is(r.err, why) && !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled: opened %v, OnClose %v", r.opened, r.err)
		}
	})
}

// TestServeDialErrors: what Dial refuses at once, and bad addresses told to
// OnClose as net says them.
func TestServeDialErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s := hServe(t, e, NopHandler{}, ServeLoops(1))
		ctx := context.Background()
		for _, tc := range []struct {
			loop             int
			network, address string
		}{
			{1, "tcp", "127.0.0.1:1"},
			{-1, "tcp", "127.0.0.1:1"},
			{0, "udp", "127.0.0.1:1"},
			{0, "tcp", ""},
		} {
			err := s.Dial(ctx, tc.loop, tc.network, tc.address, NopHandler{})
			var oe *net.OpError
			if !errors.As(err, &oe) {
				t.Fatalf("Dial(loop %d, %q, %q): %v, want a *net.OpError", tc.loop, tc.network, tc.address, err)
			}
		}
		for _, address := range []string{"127.0.0.1", "127.0.0.1:99999", "[::1:80"} {
			r := dialEcho(t, s, ctx, "tcp", address)
			var oe *net.OpError
			if r.opened || !errors.As(r.err, &oe) || oe.Op != "dial" {
				t.Fatalf("%q: opened %v, OnClose %v, want a dial *net.OpError", address, r.opened, r.err)
			}
			_, nerr := net.Dial("tcp", address)
			if nerr == nil || oe.Err.Error() != nerr.(*net.OpError).Err.Error() {
				t.Fatalf("%q: %v, net says %v", address, r.err, nerr)
			}
		}
	})
}

// TestServeDialServerClosed: a Dial still connecting when the server
// closes ends with OnClose(ErrServerClosed) before Close returns; a Dial
// after that is refused.
func TestServeDialServerClosed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s, err := e.Serve("tcp", "127.0.0.1:0", NopHandler{}, ServeLoops(1))
		if err != nil {
			t.Fatal(err)
		}
		addr := fullBacklog(t)
		errc := make(chan error, 1)
		h := &hFuncs{close: func(c *HConn, err error) { errc <- err }}
		if err := s.Dial(context.Background(), 0, "tcp", addr, h); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		s.Close()
		select {
		case err := <-errc:
			if err != ErrServerClosed || h.opened.Load() != 0 {
				t.Fatalf("OnClose %v (opened %d), want ErrServerClosed", err, h.opened.Load())
			}
		default:
			t.Fatal("Close returned before the dial's OnClose")
		}
		if err := s.Dial(context.Background(), 0, "tcp", addr, h); !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Dial after Close: %v", err)
		}
	})
}

// TestServeAdopt: a net.Conn adopted into a loop is served there by its
// handler; the loop owns it (Close closes it).
func TestServeAdopt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		s := hServe(t, e, NopHandler{}, ServeLoops(2))
		ln := echoListener(t, "tcp", "127.0.0.1:0")
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan string, 1)
		var got []byte
		var loop int
		h := &hFuncs{
			open: func(c *HConn) { loop = c.Loop(); c.Write([]byte("adopted")) },
			data: func(c *HConn, d []byte) int {
				got = append(got, d...)
				if len(got) >= 7 {
					c.Close()
				}
				return len(d)
			},
			close: func(c *HConn, err error) { done <- string(got) },
		}
		if err := s.Adopt(1, nc, h); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-done:
			if g != "adopted" || loop != 1 {
				t.Fatalf("echo %q on loop %d", g, loop)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no OnClose")
		}
		if err := s.Adopt(2, nc, h); err == nil {
			t.Fatal("Adopt on loop 2 of 2 succeeded")
		}
	})
}

// TestServePauseRead: PauseRead stops OnData (the bytes are kept) until
// ResumeRead, far beyond the input limit, and the peer's FIN comes after.
func TestServePauseRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		var mu sync.Mutex
		var got bytes.Buffer
		var conn *HConn
		h := &hFuncs{
			open: func(c *HConn) { c.PauseRead(); mu.Lock(); conn = c; mu.Unlock() },
			data: func(c *HConn, d []byte) int { mu.Lock(); got.Write(d); mu.Unlock(); return len(d) },
		}
		s := hServe(t, e, h, ServeLoops(1), ServeInputLimit(64<<10))
		c := hDial(t, s)
		payload := bytes.Repeat([]byte("x"), 1<<20)
		go func() { c.Write(payload); c.(*net.TCPConn).CloseWrite() }()
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		n, hc := got.Len(), conn
		mu.Unlock()
		if n != 0 || hc == nil {
			t.Fatalf("%d bytes delivered while paused", n)
		}
		hc.Do(func(c *HConn) { c.ResumeRead() })
		hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
		if errs := h.closeErrs(); errs[0] != io.EOF || got.Len() != len(payload) {
			t.Fatalf("OnClose %v after %d bytes", errs[0], got.Len())
		}
	})
}
