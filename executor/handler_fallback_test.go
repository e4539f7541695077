//go:build linux

package executor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/seccomp"
)

// newGoExecutor returns an Executor on the Go backend, as New returns where
// io_uring is refused.
func newGoExecutor(t testing.TB) *Executor {
	e := newGoBackend(quietLogger, "test")
	t.Cleanup(func() { e.Close() })
	return e
}

// The Go fallback keeps the Handler API: echo, partial consumption,
// backpressure, panics, AsyncWrite and Do, graceful and server close.
func TestServeGoFallback(t *testing.T) {
	before := hOpenFds(t)
	e := newGoExecutor(t)
	t.Run("echo", func(t *testing.T) {
		h := &hFuncs{}
		s := hServe(t, e, h, ServeLoops(2))
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := hDial(t, s)
				for j := range 20 {
					hRoundTrip(t, c, fmt.Appendf(nil, "conn %d message %d", i, j))
				}
				hRoundTrip(t, c, bytes.Repeat([]byte{byte(i)}, 1<<20))
			}()
		}
		wg.Wait()
		s.Close()
		if h.opened.Load() != 10 || h.closed.Load() != 10 {
			t.Fatalf("opened %d closed %d", h.opened.Load(), h.closed.Load())
		}
		for _, err := range h.closeErrs() {
			if err != ErrServerClosed {
				t.Fatalf("OnClose error %v", err)
			}
		}
	})
	t.Run("partial", func(t *testing.T) {
		h := &hFuncs{data: func(c *HConn, d []byte) int {
			n := len(d) / 8 * 8
			c.Write(d[:n])
			return n
		}}
		s := hServe(t, e, h, ServeLoops(1))
		c := hDial(t, s)
		msg := bytes.Repeat([]byte("01234567"), 100)
		go func() {
			for i := 0; i < len(msg); i += 5 {
				c.Write(msg[i:min(i+5, len(msg))])
				time.Sleep(20 * time.Microsecond)
			}
		}()
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("backpressure", func(t *testing.T) {
		const limit = 256 << 10
		var maxQueued atomic.Int64
		h := &hFuncs{data: func(c *HConn, d []byte) int {
			c.Write(d)
			maxQueued.Store(max(maxQueued.Load(), int64(c.Queued())))
			return len(d)
		}}
		s := hServe(t, e, h, ServeLoops(1), ServeOutputLimit(limit))
		c := hDial(t, s)
		var sent atomic.Int64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 64<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				n, _ := c.Write(buf)
				sent.Add(int64(n))
			}
		}()
		hWaitFor(t, "a pause", func() bool { return s.Stats().Pauses > 0 })
		time.Sleep(200 * time.Millisecond)
		close(stop)
		<-done
		if m := maxQueued.Load(); m > limit+16<<10 {
			t.Fatalf("queued output reached %d, limit %d", m, limit)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if n, _ := io.CopyN(io.Discard, c, sent.Load()); n != sent.Load() {
			t.Fatalf("read back %d of %d", n, sent.Load())
		}
	})
	t.Run("panic", func(t *testing.T) {
		var panics atomic.Int64
		h := &hFuncs{data: func(c *HConn, d []byte) int {
			if string(d) == "boom" {
				panic("boom")
			}
			c.Write(d)
			return len(d)
		}}
		s := hServe(t, e, h, ServeLoops(1), ServeOnPanic(func(*HConn, *HandlerPanic) { panics.Add(1) }))
		good := hDial(t, s)
		hRoundTrip(t, good, []byte("x"))
		bad := hDial(t, s)
		bad.Write([]byte("boom"))
		bad.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bad.Read(make([]byte, 1)); err == nil {
			t.Fatal("panicking connection stays open")
		}
		hRoundTrip(t, good, []byte("y"))
		if panics.Load() != 1 {
			t.Fatalf("%d panics reported", panics.Load())
		}
	})
	t.Run("async", func(t *testing.T) {
		h := &hFuncs{data: func(c *HConn, d []byte) int {
			msg := append([]byte(nil), d...)
			go func() {
				c.AsyncWrite(msg)
				c.Do(func(c *HConn) { c.Write([]byte("!")) })
			}()
			return len(d)
		}}
		s := hServe(t, e, h, ServeLoops(2))
		c := hDial(t, s)
		for i := range 10 {
			c.Write(fmt.Appendf(nil, "%d", i))
			got := make([]byte, 2)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != fmt.Sprintf("%d!", i) {
				t.Fatalf("%q %v", got, err)
			}
		}
	})
	t.Run("close", func(t *testing.T) {
		big := bytes.Repeat([]byte("z"), 2<<20)
		h := &hFuncs{data: func(c *HConn, d []byte) int {
			c.Write(big)
			c.Close()
			return len(d)
		}}
		s := hServe(t, e, h, ServeLoops(1), ServeOutputLimit(4<<20))
		c := hDial(t, s)
		c.Write([]byte("go"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || len(got) != len(big) {
			t.Fatalf("%d bytes, %v", len(got), err)
		}
		hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
		if errs := h.closeErrs(); errs[0] != nil {
			t.Fatalf("OnClose error %v", errs[0])
		}
		c2 := hDial(t, s)
		c2.Write([]byte("go"))
		c2.Close() // the peer goes away before reading
		hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 2 })
	})
	t.Run("unix", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s")
		s, err := e.Serve("unix", path, &hFuncs{}, ServeLoops(2))
		if err != nil {
			t.Fatal(err)
		}
		hRoundTrip(t, hDial(t, s), []byte("unix"))
		s.Close()
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("socket file left: %v", err)
		}
	})
	e.Close()
	if after := hOpenFds(t); after != before {
		t.Fatalf("%d descriptors before, %d after", before, after)
	}
}

func init() {
	childFuncs["serve-fallback"] = func() error {
		if err := seccomp.RefuseIOUring(); err != nil {
			return err
		}
		e, err := New(WithLogger(quietLogger))
		if err != nil {
			return err
		}
		defer e.Close()
		s, err := e.Serve("tcp", "127.0.0.1:0", &hFuncs{})
		if err != nil {
			return err
		}
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ping" {
			return errors.New("echo: " + string(buf))
		}
		os.Stdout.WriteString(string(e.Backend()) + " " + string(buf) + "\n")
		return nil
	}
}

// Where io_uring is refused (a seccomp filter here), Serve runs on Go's net.
func TestServeWhereIOURingIsRefused(t *testing.T) {
	if out := runInChild(t, "serve-fallback"); !strings.HasSuffix(out, "go ping") {
		t.Fatalf("child: %s", out)
	}
}
