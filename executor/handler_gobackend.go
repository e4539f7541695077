package executor

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Serve on Go's runtime, for where io_uring is refused (BackendGo). The loop
// is an ordinary goroutine running the same connection state machine as the
// io_uring loops (handler_conn.go), with goIO for its I/O: a reader and a
// writer goroutine per connection stand in for the ring's receive and send.
// They do the blocking net.Conn calls and report to the loop, which hands
// the reports to the state machine's completion handlers and runs the
// handler. The handler sees the same API and the same one-call-at-a-time
// guarantee per loop; it is just slower.

// gconn is a connection's Go backend state.
type gconn struct {
	nc   net.Conn
	buf  []byte        // the reader's buffer, lent to OnData
	ack  chan struct{} // the loop tells the reader to read (once per read)
	wr   chan []byte   // the loop hands the writer a buffer to write
	rdDL bool          // a read deadline is set, to stop the reader (loop only)
}

// gevent is a reader's or writer's report to the loop.
type gevent struct {
	c    *HConn
	n    int
	err  error
	read bool // a Read's result, else a Write's
}

// serveGo is Serve for BackendGo.
func (e *Executor) serveGo(network, address string, h Handler, cfg serveConfig) (*Server, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, listenError(network, address, net.UnknownNetworkError(network))
	}
	lc := net.ListenConfig{Control: reusePortControl(cfg.sharePort && network != "unix")}
	ln, err := lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	// (A Unix listener of Go's removes its socket file itself.)
	s := &Server{e: e, h: h, cfg: cfg, addr: ln.Addr(), done: make(chan struct{}), goLn: ln}
	if cfg.bufSize == 0 {
		s.cfg.bufSize = 16 << 10
	}
	_, err = s.watch()
	if err != nil {
		ln.Close()
		return nil, listenError(network, address, err)
	}
	for i := 0; i < cfg.loops; i++ {
		l := &hloop{s: s, id: i, h: h, cfg: &s.cfg, io: goIO{}, lnfd: -1, efd: -1, exited: make(chan struct{}),
			gev: make(chan gevent, 256), gwake: make(chan struct{}, 1)}
		l.bindHandler()
		l.pub.mode.Store(int64(RecvPlain))
		s.loops = append(s.loops, l)
	}
	for _, l := range s.loops {
		go l.grun()
	}
	s.acceptDone = make(chan struct{})
	go s.goAccept()
	return s, nil
}

// goAccept accepts connections and hands them to the loops round robin.
func (s *Server) goAccept() {
	defer close(s.acceptDone)
	var logged time.Time
	for i := 0; ; i++ {
		nc, err := s.goLn.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.acceptErrs.Add(1)
			if now := time.Now(); now.Sub(logged) > time.Second { // at most once a second
				logged = now
				s.cfg.logger.Warn("kasync: serve: accept failed, retrying", "op", "accept", "errno", errnoString(err), "err", err)
			}
			time.Sleep(10 * time.Millisecond) // out of descriptors: retry soon
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		if !s.loops[i%len(s.loops)].post(hmsg{kind: hmsgAdopt, nc: nc}, nil) {
			nc.Close()
		}
	}
}

// grun is the Go backend's loop goroutine: its turn waits on the readers'
// and writers' reports, the inbox's wake-up and the timers.
func (l *hloop) grun() {
	labelLoop("serve-go", l.id)
	l.goid.Store(currentGoroutine())
	defer func() {
		l.closeInbox()
		close(l.exited)
	}()
	if l.tick != nil {
		l.runTick(time.Now())
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		l.beginTurn()
		l.reconcileDirty()
		if l.over() {
			return
		}
		if d, ok := l.waitTimeout(); ok {
			timer.Reset(d)
		}
		var ev gevent
		got := false
		select {
		case ev = <-l.gev:
			got = true
		case <-l.gwake:
		case <-timer.C:
		}
		timer.Stop()
		l.st[ctrTurns]++ // before the reports: a turn's clock (turnNow) is read after its wait
		// At most a channel's worth of reports per turn, so that a turn's
		// clock stays fresh under load and the timers get their turn.
		for n := cap(l.gev); got; n-- {
			l.gevent(ev)
			got = false
			if n > 1 {
				select {
				case ev = <-l.gev:
					got = true
				default:
				}
			}
		}
	}
}

// gadopt makes a connection of nc (c, if not nil, is its HConn already);
// its reader waits for the first startRecv.
func (l *hloop) gadopt(nc net.Conn, c *HConn) {
	g := &gconn{nc: nc, buf: make([]byte, l.cfg.bufSize), ack: make(chan struct{}, 1), wr: make(chan []byte, 1)}
	if c == nil {
		c = &HConn{fd: -1}
	}
	c.g = g
	go g.reader(l, c)
	go g.writer(l, c)
	l.addConn(c)
}

// reader reads once per ack, until a read fails (other than by the
// deadline that stops it) or ack is closed.
func (g *gconn) reader(l *hloop, c *HConn) {
	for range g.ack {
		n, err := g.nc.Read(g.buf)
		l.gev <- gevent{c: c, n: n, err: err, read: true}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}

func (g *gconn) writer(l *hloop, c *HConn) {
	for b := range g.wr {
		n, err := g.nc.Write(b)
		l.gev <- gevent{c: c, n: n, err: err}
	}
}

// gevent hands a reader's or writer's report to the state machine.
func (l *hloop) gevent(ev gevent) {
	c := ev.c
	if !ev.read {
		var err error
		if ev.err != nil {
			err = netErrno(ev.err)
		}
		c.sendDone(ev.n, err)
		return
	}
	if ev.n > 0 {
		c.recvd(c.g.buf[:ev.n])
	}
	err := ev.err
	switch {
	case err == nil, err == io.EOF:
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errCancelled // stopRecv's deadline
	default:
		err = netErrno(err)
	}
	c.recvEnded(err)
}

// goIO is connIO on a net.Conn: a read per startRecv and a write per
// startSend, done by the connection's reader and writer goroutines; a
// deadline in the past stops either.
type goIO struct{}

func (goIO) room() bool { return true }

func (goIO) startRecv(c *HConn) {
	g := c.g
	if g.rdDL {
		g.rdDL = false
		g.nc.SetReadDeadline(time.Time{})
	}
	g.ack <- struct{}{}
}

func (goIO) stopRecv(c *HConn) {
	c.g.rdDL = true
	c.g.nc.SetReadDeadline(aLongTimeAgo)
}

func (goIO) startSend(c *HConn, buf []byte) { c.g.wr <- buf }

func (goIO) stopSend(c *HConn) { c.g.nc.SetWriteDeadline(aLongTimeAgo) }

// shutdownWrite half-closes the conn; no write is in flight.
func (goIO) shutdownWrite(c *HConn) {
	if cw, ok := c.g.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// closeFD ends the reader and writer (neither is in a call now) and closes
// the connection.
func (goIO) closeFD(c *HConn) {
	close(c.g.ack)
	close(c.g.wr)
	c.g.nc.Close()
}

// The Go backend's reads go into the reader's own buffer, which it lends
// to OnData only: WriteNoCopy copies.
func (goIO) hold([]byte) (uint16, bool) { return 0, false }
func (goIO) release(uint16)             {}

// aLongTimeAgo is a deadline that has passed: it stops a blocked call.
var aLongTimeAgo = time.Unix(1, 0)

// netErrno unwraps a net error to its errno where there is one, so that
// OnClose sees what the io_uring loops report (syscall.ECONNRESET...).
func netErrno(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// errnoString is err's errno, as the io_uring backend logs it ("" if none).
func errnoString(err error) string {
	if errno, ok := errors.AsType[syscall.Errno](err); ok {
		return errno.Error()
	}
	return ""
}

// serveGoBecause is serveGo, its Stats saying why.
func (e *Executor) serveGoBecause(network, address string, h Handler, cfg serveConfig, why string) (*Server, error) {
	s, err := e.serveGo(network, address, h, cfg)
	if err == nil {
		s.backend, s.reason = BackendGo, why
	}
	return s, err
}
