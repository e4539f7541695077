//go:build linux

package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A proxy on the fast path, as examples/proxy -mode handler has it: each
// inbound connection dials the upstream from its own loop, and the two
// forward to each other with backpressure both ways (PauseRead while the
// other side's output is over the limit, ResumeRead at its OnDrain) and
// half-close carried through (OnReadEOF, CloseWrite).

// tproxy is the server's Handler: its connections are the inbound ones.
type tproxy struct {
	network, upstream string
	limit             int  // the server's ServeOutputLimit
	noCopy            bool // forward with WriteNoCopy

	mu    sync.Mutex
	pairs []*tpair // for the test to watch their queues
}

type tpair struct {
	p         *tproxy
	in, out   *HConn
	inClosed  bool
	maxQueued atomic.Int64
}

// tupstream is the Handler of a proxy's outbound connection.
type tupstream struct{ *tpair }

func (p *tproxy) OnOpen(c *HConn) {
	pr := &tpair{p: p, in: c}
	c.SetContext(pr)
	c.PauseRead() // until the upstream is there
	p.mu.Lock()
	p.pairs = append(p.pairs, pr)
	p.mu.Unlock()
	if err := c.Server().Dial(context.Background(), c.Loop(), p.network, p.upstream, tupstream{pr}); err != nil {
		c.Close()
	}
}

func (p *tproxy) OnData(c *HConn, d []byte) int {
	pr := c.Context().(*tpair)
	return pr.forward(c, pr.out, d)
}
func (p *tproxy) OnDrain(c *HConn)   { c.Context().(*tpair).drained(c) }
func (p *tproxy) OnReadEOF(c *HConn) { c.Context().(*tpair).out.CloseWrite() }
func (p *tproxy) OnClose(c *HConn, err error) {
	pr := c.Context().(*tpair)
	pr.inClosed = true
	if pr.out != nil {
		pr.out.Close()
	}
}

func (u tupstream) OnOpen(c *HConn) {
	if u.inClosed {
		c.Close()
		return
	}
	u.out = c
	u.in.ResumeRead()
}
func (u tupstream) OnData(c *HConn, d []byte) int { return u.forward(c, u.in, d) }
func (u tupstream) OnDrain(c *HConn)              { u.drained(c) }
func (u tupstream) OnReadEOF(c *HConn)            { u.in.CloseWrite() }
func (u tupstream) OnClose(c *HConn, err error)   { u.in.Close() }

// forward sends d from src to dst (copied), and holds src's input while
// dst's output is over the limit.
func (pr *tpair) forward(src, dst *HConn, d []byte) int {
	write := dst.Write
	if pr.p.noCopy {
		write = dst.WriteNoCopy
	}
	if _, err := write(d); err != nil {
		src.Close()
		return len(d)
	}
	q := int64(dst.Queued())
	if q > pr.maxQueued.Load() {
		pr.maxQueued.Store(q)
	}
	if dst.Queued() > pr.p.limit {
		src.PauseRead()
	}
	return len(d)
}

// drained: c's output is down to half the limit: its source may go on.
func (pr *tpair) drained(c *HConn) {
	if c == pr.in {
		pr.out.ResumeRead()
	} else {
		pr.in.ResumeRead()
	}
}

// pattern is the proxied payload: a block of a prime length, so that a
// byte out of place shows.
var pattern = func() []byte {
	b := make([]byte, 1<<20+7)
	for i := range b {
		b[i] = byte(i*131 + i>>9)
	}
	return b
}()

// sendPattern writes n bytes of the pattern to w.
func sendPattern(w io.Writer, n int) error {
	for off := 0; off < n; {
		k := min(len(pattern)-off%len(pattern), n-off)
		s := off % len(pattern)
		if _, err := w.Write(pattern[s : s+k]); err != nil {
			return err
		}
		off += k
	}
	return nil
}

// checkPattern reads r to EOF, checking it is n bytes of the pattern;
// slow makes it pause now and then, a slow reader.
func checkPattern(r io.Reader, n int, slow bool) error {
	buf := make([]byte, 64<<10)
	off := 0
	for reads := 0; ; reads++ {
		k, err := r.Read(buf)
		for i := 0; i < k; {
			s := (off + i) % len(pattern)
			m := min(k-i, len(pattern)-s)
			if off+i+m > n || !bytes.Equal(buf[i:i+m], pattern[s:s+m]) {
				return errors.New("bytes differ from the pattern")
			}
			i += m
		}
		off += k
		if err == io.EOF {
			if off != n {
				return fmt.Errorf("short read: %d of %d bytes", off, n)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if slow && reads%16 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// TestServeProxy: 256 MiB each way through the fast-path proxy, byte-exact,
// with a slow reader on the client's side; the queues and the heap stay
// bounded; each side's FIN is carried through to the other.
func TestServeProxy(t *testing.T) {
	size := 256 << 20
	if testing.Short() {
		size = 64 << 20
	}
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, noCopy := range []bool{false, true} {
			t.Run(map[bool]string{false: "Write", true: "WriteNoCopy"}[noCopy], func(t *testing.T) {
				testServeProxy(t, e, size, noCopy)
			})
		}
	})
}

// testServeProxy is TestServeProxy on e, forwarding with Write or WriteNoCopy.
func testServeProxy(t *testing.T, e *Executor, size int, noCopy bool) {
	// The upstream: reads everything (checking it), sends size bytes,
	// and half-closes, then reads to EOF.
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	upErr := make(chan error, 2)
	go func() {
		c, err := up.Accept()
		if err != nil {
			upErr <- err
			upErr <- err
			return
		}
		// Closed once both ways are done: the proxy's FIN can come
		// first (the client's sending ended first), and a close then
		// would cut the upstream's sending short.
		sent := make(chan error, 1)
		go func() {
			err := sendPattern(c, size)
			c.(*net.TCPConn).CloseWrite()
			sent <- err
		}()
		upErr <- checkPattern(c, size, false)
		upErr <- <-sent
		c.Close()
	}()
	const limit = 256 << 10
	p := &tproxy{network: "tcp", upstream: up.Addr().String(), limit: limit, noCopy: noCopy}
	s := hServe(t, e, p, ServeLoops(1), ServeOutputLimit(limit))
	c := hDial(t, s)
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	var heap atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // the heap while it runs
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > heap.Load() {
				heap.Store(ms.HeapInuse)
			}
		}
	}()
	sendErr := make(chan error, 1)
	go func() {
		err := sendPattern(c, size)
		c.(*net.TCPConn).CloseWrite() // carried through to the upstream
		sendErr <- err
	}()
	if err := checkPattern(c, size, true); err != nil { // EOF: the upstream's FIN came through
		t.Fatalf("client: %v", err)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := <-upErr; err != nil {
			t.Fatalf("upstream: %v", err)
		}
	}
	close(stop)
	<-sampled
	hWaitFor(t, "both proxy conns closed", func() bool { return s.Stats().Conns == 0 })
	p.mu.Lock()
	pr := p.pairs[0]
	p.mu.Unlock()
	// Past the limit: what the receives brought before PauseRead's
	// cancellation took effect, at most the buffer ring (4 MiB here).
	if q := pr.maxQueued.Load(); q > limit+4<<20 {
		t.Fatalf("a proxy conn queued %d bytes (limit %d)", q, limit)
	}
	// HeapInuse counts garbage the GC has not collected yet, which under
	// -race and load has reached 130 MiB; the bound that matters is
	// maxQueued above. This one catches growth with what is proxied
	// (512 MiB in all).
	if h := heap.Load(); h > 192<<20 {
		t.Fatalf("heap in use reached %d MiB proxying %d MiB each way", h>>20, size>>20)
	}
	st := s.Stats()
	if noCopy && e.Backend() == BackendIOURing && st.NoCopySends == 0 {
		t.Fatalf("WriteNoCopy never sent from a receive buffer: %+v", st)
	}
	t.Logf("%d MiB each way; max queued %d KiB; max heap in use %d MiB; %d sends, %d from receive buffers",
		size>>20, pr.maxQueued.Load()>>10, heap.Load()>>20, st.Sends, st.NoCopySends)
}

// TestServeProxyHalfClose: the client's FIN reaches the upstream, which
// answers only then; the answer comes back through the proxy, then the
// upstream's FIN. The proxy's connections close on their own after.
func TestServeProxyHalfClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		up, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer up.Close()
		go func() {
			c, err := up.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			req, _ := io.ReadAll(c) // to the FIN carried through
			c.Write(append([]byte("reply to "), req...))
		}()
		p := &tproxy{network: "tcp", upstream: up.Addr().String(), limit: 1 << 20}
		s := hServe(t, e, p, ServeLoops(1))
		c := hDial(t, s)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("a question"))
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "reply to a question" {
			t.Fatalf("read %q, %v", got, err)
		}
		hWaitFor(t, "both proxy conns closed", func() bool { return s.Stats().Conns == 0 })
	})
}
