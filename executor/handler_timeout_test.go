//go:build linux

package executor

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// closeErr waits for h's first OnClose and returns its error.
func closeErr(t *testing.T, h *hFuncs) error {
	t.Helper()
	hWaitFor(t, "OnClose", func() bool { return h.closed.Load() > 0 })
	return h.closeErrs()[0]
}

// checkTimeoutErr checks that err is want, a timeout as net and os say it.
func checkTimeoutErr(t *testing.T, err, want error) {
	t.Helper()
	if err != want {
		t.Fatalf("OnClose error %v, want %v", err, want)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("errors.Is(%v, os.ErrDeadlineExceeded) is false", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%v is not a net.Error with Timeout", err)
	}
}

// Each kind of timeout fires, on a connection that gives it cause, and
// closes it hard with its error; the peer sees the connection end.
func TestServeTimeoutsFire(t *testing.T) {
	const d = 100 * time.Millisecond
	big := make([]byte, 64<<20) // more than the socket buffers hold
	for _, tc := range []struct {
		name string
		opts []ServeOption
		h    *hFuncs
		send bool // the client sends a byte first
		want error
	}{
		{"read", []ServeOption{ServeReadTimeout(d)}, &hFuncs{}, false, ErrReadTimeout},
		{"idle", []ServeOption{ServeIdleTimeout(d)}, &hFuncs{}, false, ErrIdleTimeout},
		{"write", []ServeOption{ServeWriteTimeout(d)}, &hFuncs{data: func(c *HConn, b []byte) int {
			c.Write(big) // to a client that never reads
			return len(b)
		}}, true, ErrWriteTimeout},
		{"SetReadTimeout", nil, &hFuncs{open: func(c *HConn) { c.SetReadTimeout(d) }}, false, ErrReadTimeout},
		{"SetIdleTimeout", nil, &hFuncs{open: func(c *HConn) { c.SetIdleTimeout(d) }}, true, ErrIdleTimeout},
		{"SetWriteTimeout", nil, &hFuncs{
			open: func(c *HConn) { c.SetWriteTimeout(d) },
			data: func(c *HConn, b []byte) int { c.Write(big); return len(b) },
		}, true, ErrWriteTimeout},
		// A per-connection setting overrides the server's: the idle timeout
		// turned off leaves the read timeout, which then fires.
		{"override", []ServeOption{ServeIdleTimeout(d / 2), ServeReadTimeout(3 * d)},
			&hFuncs{open: func(c *HConn) { c.SetIdleTimeout(0) }}, false, ErrReadTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, e *Executor) {
				h := &hFuncs{open: tc.h.open, data: tc.h.data}
				s := hServe(t, e, h, append([]ServeOption{ServeLoops(1)}, tc.opts...)...)
				start := time.Now()
				c := hDial(t, s)
				if tc.send {
					if _, err := c.Write([]byte{1}); err != nil {
						t.Fatal(err)
					}
				}
				err := closeErr(t, h)
				took := time.Since(start)
				checkTimeoutErr(t, err, tc.want)
				if took < d {
					t.Fatalf("closed after %v, before its timeout %v", took, d)
				}
				if st := s.Stats(); st.Timeouts != 1 {
					t.Fatalf("Stats.Timeouts %d, want 1", st.Timeouts)
				}
				if tc.want == ErrWriteTimeout {
					return // the client's buffers are full of output
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				// The peer sees the end (EOF, or a reset), after any echo.
				if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("the client's connection is still open: %v", err)
				}
			})
		})
	}
}

// Traffic pushes the timeouts back: a client that sends a byte every d/3
// for 3d (and reads its echo) is not closed; once it stops sending, the
// read timeout closes it.
func TestServeTimeoutsPushedBack(t *testing.T) {
	const d = 300 * time.Millisecond
	forEachBackend(t, func(t *testing.T, e *Executor) {
		h := &hFuncs{}
		s := hServe(t, e, h, ServeLoops(1), ServeReadTimeout(d), ServeWriteTimeout(d), ServeIdleTimeout(2*d))
		c := hDial(t, s)
		buf := make([]byte, 1)
		var last time.Time
		for end := time.Now().Add(3 * d); time.Now().Before(end); {
			if _, err := c.Write([]byte{'x'}); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatalf("echo: %v (closed with %v)", err, h.closeErrs())
			}
			last = time.Now()
			time.Sleep(d / 3)
		}
		if n := h.closed.Load(); n != 0 {
			t.Fatalf("closed while sending every d/3: %v", h.closeErrs())
		}
		err := closeErr(t, h)
		checkTimeoutErr(t, err, ErrReadTimeout)
		if took := time.Since(last); took < d-d/10 {
			t.Fatalf("closed %v after the last byte, read timeout %v", took, d)
		}
	})
}

// The setters work from a handler, and fail on a closing connection, to
// which timeouts no longer apply (its linger time does).
func TestServeTimeoutSetters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		errc := make(chan error, 4)
		h := &hFuncs{data: func(c *HConn, b []byte) int {
			errc <- c.SetReadTimeout(time.Hour)
			c.Close()
			errc <- c.SetReadTimeout(time.Millisecond)
			errc <- c.SetWriteTimeout(time.Millisecond)
			errc <- c.SetIdleTimeout(time.Millisecond)
			return len(b)
		}}
		s := hServe(t, e, h, ServeLoops(1))
		c := hDial(t, s)
		c.Write([]byte{1})
		if err := closeErr(t, h); err != nil {
			t.Fatalf("OnClose %v, want nil", err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("setter on a closing conn: %v", err)
			}
		}
	})
}

func TestServeTimeoutBadOptions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, o := range []ServeOption{ServeReadTimeout(-1), ServeWriteTimeout(-1), ServeIdleTimeout(-time.Second)} {
			if s, err := e.Serve("tcp", "127.0.0.1:0", &hFuncs{}, o); err == nil {
				s.Close()
				t.Fatal("negative timeout accepted")
			}
		}
	})
}
