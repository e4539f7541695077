package executor

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// Serve on Go's runtime, for where io_uring is refused (BackendGo). The loop
// is an ordinary goroutine running the same connection state machine as the
// io_uring loops (hconn state bits, feed, output, pause, close, linger), with
// a reader and a writer goroutine per connection standing in for the ring's
// receive and send: they do the blocking net.Conn calls and report to the
// loop, which runs the handler. The handler sees the same API and the same
// one-call-at-a-time guarantee per loop; it is just slower.

// gconn is a connection's fallback state; touched by its loop only.
type gconn struct {
	nc      net.Conn
	buf     []byte        // the reader's buffer, lent to OnData
	ack     chan struct{} // the loop tells the reader to read again
	wr      chan []byte   // the loop hands the writer a buffer to write
	reading bool          // the reader is alive (in Read, or waiting for ack)
	held    bool          // the reader waits for ack (input paused)
	writing bool          // the writer has a buffer
	stopped bool          // read deadline set to stop the reader
	wrDL    bool          // write deadline set (closing)
}

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
	ln, err := net.Listen(network, address)
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
		l := &hloop{s: s, id: i, h: h, cfg: &s.cfg, lnfd: -1, efd: -1, exited: make(chan struct{}),
			gev: make(chan gevent, 256), gwake: make(chan struct{}, 1)}
		if t, ok := h.(Ticker); ok {
			l.tick = t
		}
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
	for i := 0; ; i++ {
		nc, err := s.goLn.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.cfg.logf("kasync: serve: accept: %v", err)
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

// grun is the fallback loop goroutine.
func (l *hloop) grun() {
	l.goid.Store(currentGoroutine())
	defer func() {
		l.mu.Lock()
		l.stopReq = true
		inbox := l.inbox
		l.inbox = nil
		l.mu.Unlock()
		for _, m := range inbox {
			switch m.kind {
			case hmsgAdopt:
				m.nc.Close()
			case hmsgStats:
				close(m.ch)
			}
		}
		l.publish()
		l.pub.conns.Store(0)
		close(l.exited)
	}()
	if l.tick != nil {
		l.runTick(time.Now())
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if l.notified.Load() {
			l.drainInbox()
		}
		if l.timersActive() {
			l.runTimers(time.Now())
		}
		for i := 0; i < len(l.dirty); i++ {
			c := l.dirty[i]
			c.st &^= hsDirty
			l.greconcile(c)
		}
		clear(l.dirty)
		l.dirty = l.dirty[:0]
		if l.stopping && len(l.conns) == 0 {
			return
		}
		if d, ok := l.waitTimeout(); ok {
			timer.Reset(d)
		}
		select {
		case ev := <-l.gev:
			l.gevent(ev)
			for more := true; more; {
				select {
				case ev := <-l.gev:
					l.gevent(ev)
				default:
					more = false
				}
			}
		case <-l.gwake:
		case <-timer.C:
		}
		timer.Stop()
		l.st.turns++
	}
}

// gadopt makes a connection of nc.
func (l *hloop) gadopt(nc net.Conn) {
	g := &gconn{nc: nc, buf: make([]byte, l.cfg.bufSize), ack: make(chan struct{}, 1), wr: make(chan []byte, 1), reading: true}
	c := &HConn{l: l, g: g, fd: -1, idx: len(l.conns)}
	l.conns = append(l.conns, c)
	l.st.accepted++
	go g.reader(l, c)
	go g.writer(l, c)
	l.markDirty(c)
	l.callOpen(c)
}

func (g *gconn) reader(l *hloop, c *HConn) {
	for {
		n, err := g.nc.Read(g.buf)
		l.gev <- gevent{c: c, n: n, err: err, read: true}
		if err != nil {
			return
		}
		if _, ok := <-g.ack; !ok {
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

// gevent applies a reader's or writer's report.
func (l *hloop) gevent(ev gevent) {
	c, g := ev.c, ev.c.g
	if ev.read {
		if ev.n > 0 {
			l.st.bytesIn += uint64(ev.n)
			c.feed(g.buf[:ev.n])
		}
		switch {
		case ev.err != nil:
			g.reading = false
			c.st |= hsNoRecv
			if c.st&hsClosing == 0 {
				if ev.err == io.EOF {
					c.peerEOF()
				} else {
					l.closeConn(c, netErrno(ev.err), true)
				}
			}
		case c.st&(hsPaused|hsClosing) != 0:
			g.held = true
		default:
			g.ack <- struct{}{}
		}
		l.markDirty(c)
		return
	}
	g.writing = false
	l.st.bytesOut += uint64(ev.n)
	c.sendOff += ev.n
	if ev.err != nil {
		c.out, c.sending, c.sendOff = c.out[:0], c.sending[:0], 0
		l.closeConn(c, netErrno(ev.err), true)
	} else if c.sendOff >= len(c.sending) {
		c.sending, c.sendOff = c.sending[:0], 0
		if cap(c.sending) > shrinkCap {
			c.sending = nil
		}
	}
	if c.st&hsPaused != 0 && c.pendingOut() <= l.cfg.outLimit/2 {
		c.st &^= hsPaused
	}
	l.markDirty(c)
}

// greconcile is reconcile for the fallback: it starts writes, releases or
// holds the reader, and finishes closed connections.
func (l *hloop) greconcile(c *HConn) {
	g := c.g
	if c.st&hsDone != 0 {
		return
	}
	if c.st&hsClosing != 0 {
		if g.held {
			g.held, g.reading = false, false
			close(g.ack)
		} else if g.reading && !g.stopped {
			g.stopped = true
			g.nc.SetReadDeadline(time.Unix(1, 0))
		}
		if c.st&hsHard != 0 {
			c.out = c.out[:0]
			if g.writing {
				g.nc.SetWriteDeadline(time.Unix(1, 0))
			}
		} else {
			if !g.wrDL {
				g.wrDL = true
				g.nc.SetWriteDeadline(time.Now().Add(l.cfg.linger))
			}
			if !g.writing && c.pendingOut() > 0 {
				l.gwrite(c)
			}
		}
		if !g.reading && !g.writing && (c.st&hsHard != 0 || c.pendingOut() == 0) {
			close(g.wr)
			g.nc.Close()
			l.finishConn(c, false)
		}
		return
	}
	if c.st&(hsRedeliver|hsPaused) == hsRedeliver {
		c.deliver()
		if c.st&hsClosing != 0 {
			l.markDirty(c)
			return
		}
	}
	if c.eofDelivered() { // the EOF came while input was kept
		l.markDirty(c)
		return
	}
	if g.held && c.st&hsPaused == 0 {
		g.held = false
		g.ack <- struct{}{}
	}
	if !g.writing && c.pendingOut() > 0 {
		l.gwrite(c)
	}
	c.queued.Store(int64(c.pendingOut()))
}

// gwrite hands the writer what is left of sending, or else out.
func (l *hloop) gwrite(c *HConn) {
	if c.sendOff >= len(c.sending) {
		c.sending, c.out = c.out, c.sending[:0]
		c.sendOff = 0
	}
	c.g.writing = true
	l.st.sends++
	c.g.wr <- c.sending[c.sendOff:]
}

// netErrno unwraps a net error to its errno where there is one, so that
// OnClose sees what the io_uring loops report (syscall.ECONNRESET...).
func netErrno(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
