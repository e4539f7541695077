//go:build linux

package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// hFuncs is a Handler made of functions; nil ones echo (OnData) or do nothing.
type hFuncs struct {
	open  func(c *HConn)
	data  func(c *HConn, d []byte) int
	close func(c *HConn, err error)

	opened, closed atomic.Int64
	mu             sync.Mutex
	errs           []error
}

func (h *hFuncs) OnOpen(c *HConn) {
	h.opened.Add(1)
	if h.open != nil {
		h.open(c)
	}
}

func (h *hFuncs) OnData(c *HConn, d []byte) int {
	if h.data != nil {
		return h.data(c, d)
	}
	c.Write(d)
	return len(d)
}

func (h *hFuncs) OnClose(c *HConn, err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
	if h.close != nil {
		h.close(c, err)
	}
	h.closed.Add(1)
}

func (h *hFuncs) closeErrs() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

// hServe serves h on 127.0.0.1 and closes the server when the test ends.
func hServe(t testing.TB, e *Executor, h Handler, opts ...ServeOption) *Server {
	t.Helper()
	s, err := e.Serve("tcp", "127.0.0.1:0", h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func hDial(t testing.TB, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial(s.Addr().Network(), s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads as many bytes back, checking them.
func hRoundTrip(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		errc <- err
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back %d bytes: %v", len(msg), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		i := 0
		for i < len(got) && got[i] == msg[i] {
			i++
		}
		t.Fatalf("echo differs at byte %d of %d", i, len(msg))
	}
}

func hWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func hOpenFds(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

var hModes = []RecvMode{RecvPlain, RecvBundle, RecvIncremental}

func TestServeEcho(t *testing.T) {
	e := newTestExecutor(t)
	for _, mode := range hModes {
		t.Run(mode.String(), func(t *testing.T) {
			h := &hFuncs{}
			s := hServe(t, e, h, ServeLoops(2), ServeRecvMode(mode))
			if got := s.Stats().RecvMode; got != mode {
				t.Fatalf("recv mode %v, want %v", got, mode)
			}
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := hDial(t, s)
					for j := range 50 {
						hRoundTrip(t, c, fmt.Appendf(nil, "conn %d message %d", i, j))
					}
				}()
			}
			wg.Wait()
			st := s.Stats()
			if st.Accepted != 20 || st.Stale != 0 {
				t.Fatalf("stats %+v", st)
			}
			s.Close()
			if h.opened.Load() != 20 || h.closed.Load() != 20 {
				t.Fatalf("opened %d closed %d", h.opened.Load(), h.closed.Load())
			}
		})
	}
}

func TestServeFamilies(t *testing.T) {
	e := newTestExecutor(t)
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
		{"tcp", ":0"},
		{"unix", filepath.Join(t.TempDir(), "s")},
	} {
		t.Run(tc.network, func(t *testing.T) {
			var remote, local atomic.Value
			h := &hFuncs{open: func(c *HConn) {
				remote.Store(fmt.Sprint(c.RemoteAddr()))
				local.Store(fmt.Sprint(c.LocalAddr()))
			}}
			s, err := e.Serve(tc.network, tc.addr, h, ServeLoops(2))
			if err != nil {
				if tc.network == "tcp6" {
					t.Skip(err)
				}
				t.Fatal(err)
			}
			defer s.Close()
			for range 4 { // Unix connections are handed round robin between loops
				c := hDial(t, s)
				hRoundTrip(t, c, []byte("hello"))
				if tc.network != "unix" && remote.Load() != c.LocalAddr().String() {
					t.Fatalf("RemoteAddr %v, client says %v", remote.Load(), c.LocalAddr())
				}
				if tc.network != "unix" && local.Load() != c.RemoteAddr().String() {
					t.Fatalf("LocalAddr %v, client says %v", local.Load(), c.RemoteAddr())
				}
				c.Close()
			}
			s.Close()
			if tc.network == "unix" {
				if _, err := os.Stat(tc.addr); !os.IsNotExist(err) {
					t.Fatalf("socket file left behind: %v", err)
				}
			}
		})
	}
}

// A handler that consumes only whole 8-byte records: the rest must come back,
// first, at the next call.
func TestServePartialConsumption(t *testing.T) {
	e := newTestExecutor(t)
	var calls, carried atomic.Int64
	h := &hFuncs{data: func(c *HConn, d []byte) int {
		calls.Add(1)
		if len(d)%8 != 0 {
			carried.Add(1)
		}
		n := len(d) / 8 * 8
		c.Write(d[:n])
		return n
	}}
	s := hServe(t, e, h, ServeLoops(1))
	c := hDial(t, s)
	rng := rand.New(rand.NewPCG(1, 2))
	msg := make([]byte, 8*1000)
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	go func() {
		for rest := msg; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(13))
			c.Write(rest[:n])
			rest = rest[n:]
			time.Sleep(50 * time.Microsecond)
		}
	}()
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("records came back changed")
	}
	if carried.Load() == 0 {
		t.Fatalf("no call had a partial record (of %d calls): the test tests nothing", calls.Load())
	}
}

// A handler that consumes nothing until it has the whole message sees the
// whole message at once.
func TestServeConsumeNothingUntilComplete(t *testing.T) {
	e := newTestExecutor(t)
	const size = 300 << 10
	var maxSeen atomic.Int64
	h := &hFuncs{data: func(c *HConn, d []byte) int {
		maxSeen.Store(max(maxSeen.Load(), int64(len(d))))
		if len(d) < size {
			return 0
		}
		c.Write(d[:size])
		return size
	}}
	s := hServe(t, e, h, ServeLoops(1))
	c := hDial(t, s)
	msg := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	hRoundTrip(t, c, msg)
	hRoundTrip(t, c, msg)
	if maxSeen.Load() != size {
		t.Fatalf("largest OnData %d, want %d", maxSeen.Load(), size)
	}
}

// 1 MiB messages span many buffers; they must come back byte-exact in
// every receive mode, with and without zero-copy sends and direct files.
func TestServeLargeMessages(t *testing.T) {
	e := newTestExecutor(t)
	msg := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	type variant struct {
		name string
		opts []ServeOption
	}
	var vs []variant
	for _, m := range hModes {
		vs = append(vs, variant{m.String(), []ServeOption{ServeRecvMode(m)}})
	}
	vs = append(vs,
		variant{"smallbufs", []ServeOption{ServeRecvMode(RecvBundle), ServeBuffers(256, 16)}},
		variant{"zerocopy", []ServeOption{ServeZeroCopyAbove(1)}},
		variant{"direct", []ServeOption{ServeDirectFiles()}},
	)
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			s := hServe(t, e, &hFuncs{}, append(v.opts, ServeLoops(2))...)
			var wg sync.WaitGroup
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := hDial(t, s)
					for range 3 {
						hRoundTrip(t, c, msg)
					}
				}()
			}
			wg.Wait()
			// The loop may see the last send's completion after the client
			// has read everything.
			hWaitFor(t, "every byte counted", func() bool {
				st := s.Stats()
				return st.BytesIn == 9<<20 && st.BytesOut == 9<<20
			})
			if st := s.Stats(); v.name == "zerocopy" && st.ZCSends == 0 {
				t.Fatalf("no zero-copy sends: %+v", st)
			}
		})
	}
}

// Two 64-byte buffers for ten busy connections: receives run out of
// buffers, are re-armed, and nothing is lost.
func TestServeENOBUFSRecovery(t *testing.T) {
	e := newTestExecutor(t)
	for _, mode := range hModes {
		t.Run(mode.String(), func(t *testing.T) {
			s := hServe(t, e, &hFuncs{}, ServeLoops(1), ServeRecvMode(mode), ServeBuffers(64, 2))
			msg := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz012345"), 2048) // 64 KiB
			var wg sync.WaitGroup
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := hDial(t, s)
					hRoundTrip(t, c, msg)
				}()
			}
			wg.Wait()
			if st := s.Stats(); st.NoBufs == 0 {
				t.Fatalf("no receive ran out of buffers: %+v", st)
			}
		})
	}
}

// A client that sends but never reads, to an echo server: the server stops
// receiving, and its memory for the connection (queued output plus input
// kept while paused) stays bounded by the limit plus one buffer ring's worth.
func TestServeBackpressureBounded(t *testing.T) {
	e := newTestExecutor(t)
	const limit, ringBytes = 256 << 10, 64 * 4096
	var maxQueued atomic.Int64
	var conn atomic.Pointer[HConn]
	h := &hFuncs{
		open: func(c *HConn) { conn.Store(c) },
		data: func(c *HConn, d []byte) int {
			c.Write(d)
			maxQueued.Store(max(maxQueued.Load(), int64(c.Queued())))
			return len(d)
		},
	}
	s := hServe(t, e, h, ServeLoops(1), ServeOutputLimit(limit), ServeBuffers(4096, 64), ServeRecvMode(RecvPlain))
	c := hDial(t, s)
	stop := make(chan struct{})
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = byte(i % 251)
		}
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
	// The server's output backs up, its receive pauses, and the client's
	// writes back up in turn.
	hWaitFor(t, "a pause", func() bool { return s.Stats().Pauses > 0 })
	// Pauses come and go while the kernel's socket buffers fill; once they
	// are full, receiving stops for good. Under load that takes a while, so
	// wait for it (hWaitFor fails the test if it never happens).
	last := s.Stats().BytesIn
	hWaitFor(t, "receiving to stop", func() bool {
		time.Sleep(300 * time.Millisecond)
		in := s.Stats().BytesIn
		stopped := in == last
		last = in
		return stopped
	})
	close(stop)
	<-done
	if m := maxQueued.Load(); m > limit+ringBytes {
		t.Fatalf("queued output reached %d, limit %d", m, limit)
	}
	hc := conn.Load()
	mem := make(chan int, 1)
	hc.Do(func(c *HConn) { mem <- c.Queued() + len(c.pend) - c.pendOff })
	if m := <-mem; m > limit+2*ringBytes {
		t.Fatalf("connection holds %d bytes, limit %d", m, limit)
	}
	// A goroutine writing into the backed-up connection is told to wait.
	var err error
	for range 100 {
		if err = hc.AsyncWrite(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrOutputFull) {
		t.Fatalf("AsyncWrite into a full connection: %v", err)
	}
	// The client reads; the server resumes, and every byte comes back
	// (plus what AsyncWrite queued).
	c.SetDeadline(time.Now().Add(20 * time.Second))
	n, _ := io.CopyN(io.Discard, c, sent.Load())
	if n != sent.Load() {
		dbg := make(chan string, 1)
		hc.Do(func(c *HConn) {
			dbg <- fmt.Sprintf("st %b recv %v send %v out %d sending %d off %d pend %d/%d", c.st, c.recvOp != nil, c.sendOp != nil, len(c.out), len(c.sending), c.sendOff, c.pendOff, len(c.pend))
		})
		t.Log(<-dbg, s.Stats())
		t.Fatalf("read back %d of %d bytes", n, sent.Load())
	}
	t.Logf("client sent %d bytes, largest queue %d, stats %+v", sent.Load(), maxQueued.Load(), s.Stats())
}

func TestServeHandlerPanicContained(t *testing.T) {
	e := newTestExecutor(t)
	reported := make(chan *HandlerPanic, 1)
	h := &hFuncs{data: func(c *HConn, d []byte) int {
		if bytes.Contains(d, []byte("boom")) {
			panic("boom")
		}
		c.Write(d)
		return len(d)
	}}
	s := hServe(t, e, h, ServeLoops(1), ServeOnPanic(func(c *HConn, p *HandlerPanic) { reported <- p }))
	good := hDial(t, s)
	hRoundTrip(t, good, []byte("hello"))
	bad := hDial(t, s)
	bad.Write([]byte("boom"))
	bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := bad.Read(make([]byte, 10)); err == nil {
		t.Fatalf("panicking connection answered %d bytes", n)
	}
	p := <-reported
	if p.Value != "boom" || !bytes.Contains(p.Stack, []byte("TestServeHandlerPanicContained")) {
		t.Fatalf("reported %v with stack\n%s", p.Value, p.Stack)
	}
	hRoundTrip(t, good, []byte("still here"))
	hRoundTrip(t, hDial(t, s), []byte("new one"))
	hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
	var hp *HandlerPanic
	if errs := h.closeErrs(); !errors.As(errs[0], &hp) {
		t.Fatalf("OnClose error %v", errs[0])
	}
	if st := s.Stats(); st.Panics != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Panics in OnOpen, OnClose and Do are contained too.
func TestServePanicsEverywhere(t *testing.T) {
	e := newTestExecutor(t)
	var panics atomic.Int64
	var n atomic.Int64
	var hc atomic.Pointer[HConn]
	h := &hFuncs{
		open: func(c *HConn) {
			if n.Add(1) == 1 {
				panic("open")
			}
			hc.Store(c)
		},
		close: func(c *HConn, err error) { panic("close") },
	}
	s := hServe(t, e, h, ServeLoops(1), ServeOnPanic(func(*HConn, *HandlerPanic) { panics.Add(1) }))
	c1 := hDial(t, s)
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection whose OnOpen panicked stays open")
	}
	c2 := hDial(t, s)
	hRoundTrip(t, c2, []byte("x"))
	hc.Load().Do(func(*HConn) { panic("do") })
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection whose Do panicked stays open")
	}
	hWaitFor(t, "4 panics", func() bool { return panics.Load() == 4 }) // open, close, do, close
	hRoundTrip(t, hDial(t, s), []byte("alive"))
}

func TestServeCloseFromAnotherGoroutine(t *testing.T) {
	e := newTestExecutor(t)
	h := &hFuncs{}
	s := hServe(t, e, h, ServeLoops(2))
	var wg sync.WaitGroup
	conns := make([]net.Conn, 50)
	for i := range conns {
		conns[i] = hDial(t, s)
		hRoundTrip(t, conns[i], []byte("hi"))
	}
	for _, c := range conns {
		wg.Add(1)
		go func() { // keep traffic going until the server closes
			defer wg.Done()
			buf := make([]byte, 64)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	if h.closed.Load() != 50 {
		t.Fatalf("OnClose called %d times, want 50", h.closed.Load())
	}
	for _, err := range h.closeErrs() {
		if err != ErrServerClosed {
			t.Fatalf("OnClose error %v, want ErrServerClosed", err)
		}
	}
	if _, err := net.Dial("tcp", s.Addr().String()); err == nil {
		t.Fatal("closed server still accepts")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestServeCloseFromHandler(t *testing.T) {
	e := newTestExecutor(t)
	var s *Server
	var ready sync.WaitGroup
	ready.Add(1)
	h := &hFuncs{data: func(c *HConn, d []byte) int {
		ready.Wait()
		s.Close() // must not wait for its own loop
		return len(d)
	}}
	s = hServe(t, e, h, ServeLoops(2))
	ready.Done()
	c := hDial(t, s)
	c.Write([]byte("stop"))
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestServeShutdown(t *testing.T) {
	e := newTestExecutor(t)
	for _, backend := range []string{"io_uring", "go"} {
		t.Run(backend, func(t *testing.T) {
			e := e
			if backend == "go" {
				e = newGoExecutor(t)
			}
			h := &hFuncs{}
			s, err := e.Serve("tcp", "127.0.0.1:0", h, ServeLoops(2))
			if err != nil {
				t.Fatal(err)
			}
			c1, c2 := hDial(t, s), hDial(t, s)
			hRoundTrip(t, c1, []byte("1"))
			hRoundTrip(t, c2, []byte("2"))
			done := make(chan error, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			go func() { done <- s.Shutdown(ctx) }()
			hWaitFor(t, "accepting to stop", func() bool {
				c, err := net.DialTimeout("tcp", s.Addr().String(), 100*time.Millisecond)
				if err != nil {
					return true
				}
				c.Close()
				return false
			})
			hRoundTrip(t, c1, []byte("still served")) // open ones go on
			c1.Close()
			// c2 stays open past the grace period: Shutdown closes it.
			if err := <-done; err != context.DeadlineExceeded {
				t.Fatalf("Shutdown: %v", err)
			}
			c2.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c2.Read(make([]byte, 1)); err == nil {
				t.Fatal("connection open after Shutdown")
			}
			select {
			case <-s.Done():
			default:
				t.Fatal("server not stopped")
			}
			if h.closed.Load() != h.opened.Load() { // (probes may have been accepted too)
				t.Fatalf("OnClose called %d times for %d connections", h.closed.Load(), h.opened.Load())
			}
		})
	}
}

func TestServeStopsWithExecutor(t *testing.T) {
	e, err := New(WithStrict())
	if err != nil {
		t.Fatal(err)
	}
	h := &hFuncs{}
	s, err := e.Serve("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	c := hDial(t, s)
	hRoundTrip(t, c, []byte("x"))
	e.Close()
	select {
	case <-s.Done():
	default:
		t.Fatal("Executor.Close returned before the server stopped")
	}
	if h.closed.Load() != 1 {
		t.Fatal("connection not closed")
	}
	if _, err := e.Serve("tcp", "127.0.0.1:0", h); err == nil {
		t.Fatal("Serve on a closed executor works")
	}
}

// Close after a response: the response arrives whole, then EOF.
func TestServeGracefulClose(t *testing.T) {
	e := newTestExecutor(t)
	big := bytes.Repeat([]byte("x"), 3<<20) // more than the socket buffers hold
	h := &hFuncs{data: func(c *HConn, d []byte) int {
		c.Write(big)
		c.Close()
		if _, err := c.Write(d); err == nil {
			panic("Write after Close works")
		}
		return len(d)
	}}
	s := hServe(t, e, h, ServeLoops(1), ServeOutputLimit(8<<20))
	c := hDial(t, s)
	c.Write([]byte("go"))
	time.Sleep(50 * time.Millisecond) // let the output back up before reading
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || len(got) != len(big) {
		t.Fatalf("read %d bytes, %v; want %d then EOF", len(got), err, len(big))
	}
	hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
	if errs := h.closeErrs(); errs[0] != nil {
		t.Fatalf("OnClose error %v, want nil", errs[0])
	}
}

// A closed connection whose peer never reads gives up after the linger time.
func TestServeLingerBounded(t *testing.T) {
	e := newTestExecutor(t)
	big := make([]byte, 8<<20)
	h := &hFuncs{data: func(c *HConn, d []byte) int {
		c.Write(big)
		c.Close()
		return len(d)
	}}
	s := hServe(t, e, h, ServeLoops(1), ServeOutputLimit(16<<20), ServeLinger(100*time.Millisecond))
	c := hDial(t, s)
	c.Write([]byte("go"))
	hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
	if st := s.Stats(); st.Conns != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServePeerCloseAndReset(t *testing.T) {
	e := newTestExecutor(t)
	h := &hFuncs{}
	s := hServe(t, e, h, ServeLoops(1))
	c := hDial(t, s)
	hRoundTrip(t, c, []byte("x"))
	c.Close()
	hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
	if errs := h.closeErrs(); errs[0] != io.EOF {
		t.Fatalf("OnClose after peer close: %v, want EOF", errs[0])
	}
	c = hDial(t, s)
	hRoundTrip(t, c, []byte("x"))
	c.(*net.TCPConn).SetLinger(0)
	c.Write([]byte("unread"))
	c.Close() // RST
	hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 2 })
	if errs := h.closeErrs(); errs[1] != io.EOF && !errors.Is(errs[1], syscall.ECONNRESET) {
		t.Fatalf("OnClose after reset: %v", errs[1])
	}
}

func TestServeInputLimit(t *testing.T) {
	e := newTestExecutor(t)
	h := &hFuncs{data: func(*HConn, []byte) int { return 0 }}
	s := hServe(t, e, h, ServeLoops(1), ServeInputLimit(100<<10))
	c := hDial(t, s)
	go c.Write(make([]byte, 1<<20))
	hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
	if errs := h.closeErrs(); errs[0] != ErrInputLimit {
		t.Fatalf("OnClose error %v", errs[0])
	}
}

// Goroutines answer through AsyncWrite and Do; Context carries state.
func TestServeAsyncWriteAndDo(t *testing.T) {
	e := newTestExecutor(t)
	var last atomic.Pointer[HConn]
	h := &hFuncs{
		close: func(c *HConn, err error) { last.Store(c) },
		open:  func(c *HConn) { c.SetContext(new(int)) },
		data: func(c *HConn, d []byte) int {
			msg := append([]byte(nil), d...)
			go func() {
				time.Sleep(time.Millisecond)
				if err := c.AsyncWrite(msg); err != nil {
					panic(err)
				}
				c.Do(func(c *HConn) {
					n := c.Context().(*int)
					*n++
					c.Write(fmt.Appendf(nil, "#%d;", *n))
				})
			}()
			return len(d)
		},
	}
	s := hServe(t, e, h, ServeLoops(2))
	c := hDial(t, s)
	for i := 1; i <= 20; i++ {
		want := fmt.Sprintf("m%02d#%d;", i, i)
		c.Write([]byte(want[:3]))
		got := make([]byte, len(want))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	c.Close()
	hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
	hc := last.Load()
	if err := hc.AsyncWrite([]byte("late")); err != net.ErrClosed {
		t.Fatalf("AsyncWrite on a closed connection: %v", err)
	}
	if err := hc.Do(func(*HConn) {}); err != net.ErrClosed {
		t.Fatalf("Do on a closed connection: %v", err)
	}
}

// Writev queues its buffers in order; Stats may be called from handlers on
// every loop at once without the loops waiting for each other.
func TestServeWritevAndStatsFromHandlers(t *testing.T) {
	e := newTestExecutor(t)
	var s *Server
	var ready sync.WaitGroup
	ready.Add(1)
	h := &hFuncs{data: func(c *HConn, d []byte) int {
		ready.Wait()
		st := s.Stats()
		c.Writev([][]byte{[]byte("<"), d, fmt.Appendf(nil, ">%d;", min(st.Loops, 2))})
		return len(d)
	}}
	s = hServe(t, e, h, ServeLoops(2))
	ready.Done()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := hDial(t, s)
			for range 50 {
				c.Write([]byte("x"))
				got := make([]byte, 5)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, got); err != nil || string(got) != "<x>2;" {
					t.Errorf("%q %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// With ServeKeepP and GOMAXPROCS=1 the loop holds the only P while it
// waits; other goroutines, timers and the garbage collector still get to
// run (the scheduler preempts the loop), and the server works and stops.
func TestServeKeepP(t *testing.T) {
	e := newTestExecutor(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	h := &hFuncs{}
	s, err := e.Serve("tcp", "127.0.0.1:0", h, ServeLoops(1), ServeKeepP())
	if err != nil {
		t.Fatal(err)
	}
	c := hDial(t, s)
	hRoundTrip(t, c, []byte("hello"))
	time.Sleep(20 * time.Millisecond) // the loop now waits, idle
	done := make(chan struct{})
	go func() {
		time.Sleep(time.Millisecond)
		runtime.GC()
		close(done)
	}()
	select { // liveness only: how long it takes is measured, not asserted
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a sleep and a GC never ran beside an idle loop")
	}
	for range 10 { // each waits for the client goroutine's turn on the P
		hRoundTrip(t, c, []byte("again"))
	}
	s.Close()
	if h.closed.Load() != 1 {
		t.Fatal("connection not closed")
	}
}

type tickHandler struct {
	hFuncs
	ticks atomic.Int64
}

func (h *tickHandler) OnTick(int, time.Time) time.Duration {
	if h.ticks.Add(1) >= 10 {
		return 0
	}
	return time.Millisecond
}

func TestServeTicker(t *testing.T) {
	e := newTestExecutor(t)
	h := &tickHandler{}
	s := hServe(t, e, h, ServeLoops(2))
	hWaitFor(t, "ticks", func() bool { return h.ticks.Load() >= 11 })
	time.Sleep(20 * time.Millisecond)
	if n := h.ticks.Load(); n > 11 {
		t.Fatalf("%d ticks after returning 0", n)
	}
	hRoundTrip(t, hDial(t, s), []byte("x"))
}

func TestServeDirectFiles(t *testing.T) {
	e := newTestExecutor(t)
	before := hOpenFds(t)
	h := &hFuncs{}
	s := hServe(t, e, h, ServeLoops(2), ServeDirectFiles())
	var conns []net.Conn
	for range 20 {
		c := hDial(t, s)
		hRoundTrip(t, c, []byte("direct"))
		conns = append(conns, c)
	}
	// 20 client sockets, 2 listeners, 2 rings, 2 eventfds: no server-side
	// connection descriptors.
	if n := hOpenFds(t) - before; n > 20+6 {
		t.Fatalf("%d more descriptors", n)
	}
	for _, c := range conns {
		c.Close()
	}
	hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 20 })
}

// No descriptor outlives Close, and neither does a goroutine (TestMain).
func TestServeFdsBackToBaseline(t *testing.T) {
	before := hOpenFds(t)
	e, err := New(WithStrict(), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]ServeOption{nil, {ServeDirectFiles()}, {ServeZeroCopyAbove(1)}} {
		s, err := e.Serve("tcp", "127.0.0.1:0", &hFuncs{}, append(opts, ServeLoops(2))...)
		if err != nil {
			t.Fatal(err)
		}
		var conns []net.Conn
		for range 10 {
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			hRoundTrip(t, c, make([]byte, 100<<10))
			conns = append(conns, c)
		}
		s.Close()
		for _, c := range conns {
			c.Close()
		}
	}
	e.Close()
	if after := hOpenFds(t); after != before {
		t.Fatalf("%d descriptors before, %d after", before, after)
	}
}

func TestServe10kConns(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 10000
	// Client and server ends both need descriptors: 2n and some. Root may
	// raise the hard limit too; otherwise the server accepts into
	// registered files, which need none.
	var opts []ServeOption
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if old.Cur < 2*n+200 {
		rl := unix.Rlimit{Cur: 2*n + 200, Max: max(old.Max, 2*n+200)}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			rl = unix.Rlimit{Cur: old.Max, Max: old.Max}
			if old.Max < n+200 || unix.Setrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
				t.Skipf("cannot raise RLIMIT_NOFILE to %d", n+200)
			}
			opts = append(opts, ServeDirectFiles())
		}
		t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	}
	e := newTestExecutor(t)
	h := &hFuncs{}
	s := hServe(t, e, h, append(opts, ServeLoops(2))...)
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	hWaitFor(t, "every connection open", func() bool { return h.opened.Load() == n })
	// Everyone sends at once, then everyone reads.
	for i, c := range conns {
		if _, err := c.Write(fmt.Appendf(nil, "%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 5)
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != fmt.Sprintf("%05d", i) {
			t.Fatalf("conn %d: %q, %v", i, buf, err)
		}
	}
	st := s.Stats()
	t.Logf("stats %+v", st)
	if st.Conns != n {
		t.Fatalf("%d connections open, want %d", st.Conns, n)
	}
	s.Close()
	if h.closed.Load() != n {
		t.Fatalf("OnClose called %d times", h.closed.Load())
	}
}

// With bundles hidden (an older kernel), RecvAuto/RecvBundle fall back.
func TestServeFallsBackWithoutBundles(t *testing.T) {
	e := newTestExecutor(t)
	s := hServe(t, e, &hFuncs{}, ServeLoops(1), ServeRecvMode(RecvBundle),
		serveRingOptions(ring.WithoutFeatures(ring.FeatRecvSendBundle)))
	if m := s.Stats().RecvMode; m != RecvPlain {
		t.Fatalf("recv mode %v, want plain", m)
	}
	hRoundTrip(t, hDial(t, s), make([]byte, 100<<10))
}

func TestServeBadOptions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, tc := range []struct {
			name string
			h    Handler
			o    ServeOption
		}{
			{"loops 0", &hFuncs{}, ServeLoops(0)},
			{"loops -1", &hFuncs{}, ServeLoops(-1)},
			{"3 buffers", &hFuncs{}, ServeBuffers(4096, 3)},
			{"buffers of 0 bytes", &hFuncs{}, ServeBuffers(0, 64)},
			{"0 buffers", &hFuncs{}, ServeBuffers(4096, 0)},
			{"output limit 0", &hFuncs{}, ServeOutputLimit(0)},
			{"input limit 0", &hFuncs{}, ServeInputLimit(0)},
			{"ring entries 0", &hFuncs{}, ServeRingEntries(0)},
			{"ring entries 1", &hFuncs{}, ServeRingEntries(1)},
			{"ring entries 2", &hFuncs{}, ServeRingEntries(2)},
			{"ring entries 3", &hFuncs{}, ServeRingEntries(3)},
			{"ring entries 32769", &hFuncs{}, ServeRingEntries(32769)},
			{"ring entries 1<<31", &hFuncs{}, ServeRingEntries(1 << 31)},
			{"recv mode -1", &hFuncs{}, ServeRecvMode(-1)},
			{"recv mode 4", &hFuncs{}, ServeRecvMode(RecvIncremental + 1)},
			{"negative linger", &hFuncs{}, ServeLinger(-time.Second)},
			{"nil option", &hFuncs{}, nil},
			{"nil handler", nil, ServeLoops(1)},
		} {
			s, err := e.Serve("tcp", "127.0.0.1:0", tc.h, tc.o)
			if err == nil {
				go s.Close() // it may never return: that is the bug
				t.Fatalf("%s: accepted", tc.name)
			}
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "listen" {
				t.Fatalf("%s: error %#v, want a listen *net.OpError", tc.name, err)
			}
			t.Logf("%s: %v", tc.name, err)
		}
		if _, err := e.Serve("udp", "127.0.0.1:0", &hFuncs{}); err == nil {
			t.Fatal("udp accepted")
		}
		// The bounds themselves work: the smallest ring (SQEs submitted
		// as flush goes) and the largest, under several connections.
		for _, entries := range []uint32{minServeEntries, maxServeEntries} {
			s := hServe(t, e, &hFuncs{}, ServeLoops(1), ServeRingEntries(entries), ServeLinger(0))
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := hDial(t, s)
					hRoundTrip(t, c, bytes.Repeat([]byte{byte(i)}, 256<<10))
				}()
			}
			wg.Wait()
			s.Close()
		}
	})
}

// Many connections at once, random chunk sizes, a small buffer ring: bundles
// wrap around the ring's end, incremental buffers are shared between
// connections, receives run out of buffers. Every byte must come back in
// order on its own connection.
func TestServeStressModes(t *testing.T) {
	e := newTestExecutor(t)
	for _, mode := range hModes {
		for _, bufs := range [][2]int{{1024, 16}, {4096, 4}} {
			t.Run(fmt.Sprintf("%v-%dx%d", mode, bufs[1], bufs[0]), func(t *testing.T) {
				s := hServe(t, e, &hFuncs{}, ServeLoops(2), ServeRecvMode(mode), ServeBuffers(bufs[0], bufs[1]))
				var wg sync.WaitGroup
				for i := range 32 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c := hDial(t, s)
						rng := rand.New(rand.NewPCG(uint64(i), 7))
						msg := make([]byte, 256<<10)
						for j := range msg {
							msg[j] = byte(rng.Uint32())
						}
						c.SetDeadline(time.Now().Add(20 * time.Second))
						go func() {
							for rest := msg; len(rest) > 0; {
								n := min(len(rest), 1+rng.IntN(9000))
								if _, err := c.Write(rest[:n]); err != nil {
									return
								}
								rest = rest[n:]
							}
						}()
						got := make([]byte, len(msg))
						if _, err := io.ReadFull(c, got); err != nil {
							t.Errorf("conn %d: %v", i, err)
							return
						}
						if !bytes.Equal(got, msg) {
							t.Errorf("conn %d: echo differs", i)
						}
					}()
				}
				wg.Wait()
				t.Logf("%+v", s.Stats())
			})
		}
	}
}
