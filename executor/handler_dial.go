package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Outbound and adopted connections on a Server's loops, for either backend:
// Server.Dial and Server.Adopt, and how their results reach the handler.
// The io_uring half (socket and CONNECT on the loop's ring) is in
// handler_dial_linux.go.

// Dial opens a connection to address on network ("tcp", "tcp4", "tcp6" or
// "unix") from the server's loop with index loop (0 to ServeLoops-1; from
// a handler, c.Loop() puts it beside c), served on the fast path by h, or
// by the server's Handler if h is nil. Dial does not wait: it returns an
// error only for what it can tell at once (no such loop, a network it does
// not know, a server that has stopped). Everything else is told to h:
//
//   - connected: h.OnOpen(c), and c is an ordinary fast-path connection;
//   - failed: h.OnClose(c, err) with no OnOpen before it, err a *net.OpError
//     as net.Dial gives it (connection refused wraps syscall.ECONNREFUSED,
//     a bad or unknown address a *net.AddrError or *net.DNSError), and
//     ErrServerClosed if the server stops first. c is then no connection:
//     only Loop, Context and SetContext mean anything.
//
// ctx bounds the connecting only: a deadline of ctx fails it with an error
// for which errors.Is(err, os.ErrDeadlineExceeded) (and
// context.DeadlineExceeded) holds, and its cancellation with ctx's cause.
//
// On io_uring, a literal address (an IP and a numeric port, or a Unix
// path) is connected on the loop's own ring: socket(2), then CONNECT with
// ctx's deadline as its LINK_TIMEOUT; a name is resolved by a goroutine
// first. On the Go backend a goroutine dials with net.Dialer.
//
// Each call gets its own h, so a handler value may carry what the
// connection is for: a proxy dials from its inbound connection's OnOpen
// with a handler holding that connection, and pairs the two in OnOpen.
// Dial is safe from any goroutine.
func (s *Server) Dial(ctx context.Context, loop int, network, address string, h Handler) error {
	fail := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Err: err}
	}
	switch {
	case loop < 0 || loop >= len(s.loops):
		return fail(fmt.Errorf("executor: Server.Dial on loop %d of %d", loop, len(s.loops)))
	case network != "tcp" && network != "tcp4" && network != "tcp6" && network != "unix":
		return fail(net.UnknownNetworkError(network))
	case address == "":
		return fail(errMissingAddress)
	}
	l := s.loops[loop]
	c := &HConn{l: l, fd: -1, h: h, dial: &hdial{ctx: ctx, network: network, address: address}}
	if l.gev != nil { // the Go backend's loop
		return l.goDial(c)
	}
	return l.ringDial(c)
}

// errMissingAddress is net's error for a Dial to "".
var errMissingAddress = errors.New("missing address")

// Adopt makes nc, a connected TCP or Unix connection, a fast-path
// connection on the server's loop with index loop, served by h (the
// server's Handler if nil): OnOpen follows on that loop, then everything
// as for an accepted connection. On io_uring the loop takes nc's
// descriptor (a duplicate) and nc is closed; on the Go backend the loop's
// reader and writer goroutines use nc itself. Either way nc is the
// server's from the call on: the caller must not use it again, and it is
// closed if Adopt fails. Adopt is safe from any goroutine.
func (s *Server) Adopt(loop int, nc net.Conn, h Handler) error {
	if loop < 0 || loop >= len(s.loops) {
		nc.Close()
		return fmt.Errorf("executor: Server.Adopt on loop %d of %d", loop, len(s.loops))
	}
	l := s.loops[loop]
	c := &HConn{l: l, fd: -1, h: h}
	if l.gev != nil {
		if !l.post(hmsg{kind: hmsgAdopt, c: c, nc: nc}, nil) {
			nc.Close()
			return ErrServerClosed
		}
		return nil
	}
	return l.ringAdopt(c, nc)
}

// hdial is a Dial's state until it has connected or failed.
type hdial struct {
	ctx              context.Context
	network, address string
	err              error       // the dial failed (Go backend, resolving)
	nc               net.Conn    // Go backend: the connection dialed
	stop             func() bool // ends the context.AfterFunc watching ctx
	ring             dialRing    // io_uring: the CONNECT (handler_dial_linux.go)
}

// handler is c's Handler: its own, or its server's.
func (c *HConn) handler() Handler {
	if c.h != nil {
		return c.h
	}
	return c.l.h
}

// dialFailed tells c's handler that its Dial failed: OnClose with err,
// without OnOpen. On the loop's thread.
func (l *hloop) dialFailed(c *HConn, err error) {
	c.st |= hsClosing | hsDone
	c.closed.Store(true)
	c.err = err
	if d := c.dial; d != nil && d.stop != nil {
		d.stop()
	}
	c.dial = nil
	l.callClose(c)
}

// dialError is the error of a failed Dial, as net.Dialer gives it.
func dialError(network string, addr net.Addr, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		if oe.Err != nil && errors.Is(oe.Err, context.DeadlineExceeded) && !errors.Is(oe.Err, os.ErrDeadlineExceeded) {
			oe.Err = errDialTimeout{}
		}
		return oe
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = errDialTimeout{}
	}
	return &net.OpError{Op: "dial", Net: network, Addr: addr, Err: err}
}

// errDialTimeout is a Dial's deadline: "i/o timeout", as net says it, and
// both os.ErrDeadlineExceeded and context.DeadlineExceeded to errors.Is.
type errDialTimeout struct{}

func (errDialTimeout) Error() string   { return "i/o timeout" }
func (errDialTimeout) Timeout() bool   { return true }
func (errDialTimeout) Temporary() bool { return true }
func (errDialTimeout) Is(err error) bool {
	return err == os.ErrDeadlineExceeded || err == context.DeadlineExceeded
}

// goDial is Dial on the Go backend: a goroutine dials, and the loop adopts
// the connection or reports the error.
func (l *hloop) goDial(c *HConn) error {
	d := c.dial
	return l.dialAside(c, func(ctx context.Context) {
		var nd net.Dialer
		nc, err := nd.DialContext(ctx, d.network, d.address)
		if err != nil {
			d.err = dialError(d.network, nil, err)
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		d.nc = nc
	})
}

// dialAside runs f, the blocking part of c's Dial (resolving a name, or on
// the Go backend the whole dial), on a goroutine, then hands c to its loop
// (hmsgDial). The server's Close waits for it, and the loop's end cancels
// it; if the loop has stopped by then, OnClose(ErrServerClosed) is called
// from that goroutine, after the loop's last call.
func (l *hloop) dialAside(c *HConn, f func(ctx context.Context)) error {
	d := c.dial
	l.mu.Lock()
	if l.stopReq {
		l.mu.Unlock()
		return &net.OpError{Op: "dial", Net: d.network, Err: ErrServerClosed}
	}
	l.s.dialWG.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.s.dialWG.Done()
		ctx, cancel := context.WithCancel(d.ctx)
		defer cancel()
		stop := context.AfterFunc(exitContext(l.exited), cancel)
		defer stop()
		f(ctx)
		if l.post(hmsg{kind: hmsgDial, c: c}, nil) {
			return
		}
		<-l.exited
		if d.nc != nil {
			d.nc.Close()
		}
		l.dialFailed(c, ErrServerClosed)
	}()
	return nil
}

// exitContext is a context done once ch is closed.
func exitContext(ch <-chan struct{}) context.Context {
	return chanContext(ch)
}

type chanContext <-chan struct{}

func (chanContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c chanContext) Done() <-chan struct{}     { return c }
func (c chanContext) Err() error {
	select {
	case <-c:
		return context.Canceled
	default:
		return nil
	}
}
func (chanContext) Value(any) any { return nil }

// dialMsg handles an hmsgDial on the loop: a Dial's result or its next
// step. stop: the loop is stopping.
func (l *hloop) dialMsg(c *HConn, stop bool) {
	d := c.dial
	switch {
	case d.nc != nil && (stop || l.stopping):
		d.nc.Close()
		l.dialFailed(c, ErrServerClosed)
	case d.nc != nil:
		c.dial = nil
		l.gadopt(d.nc, c)
	case d.err != nil:
		l.dialFailed(c, d.err)
	case stop || l.stopping:
		l.dialFailed(c, ErrServerClosed)
	default:
		l.ringConnect(c)
	}
}

// dialDropped: an hmsgDial left in the inbox of a loop that stopped.
func (l *hloop) dialDropped(c *HConn) {
	if c.dial.nc != nil {
		c.dial.nc.Close()
	}
	l.dialFailed(c, ErrServerClosed)
}

// dialDeadline is the time left before ctx's deadline, if it has one.
func dialDeadline(ctx context.Context) (time.Duration, bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return max(time.Until(dl), time.Nanosecond), true
}
