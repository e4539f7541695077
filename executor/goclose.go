package executor

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// What the executor made and its Close must close, besides the io_uring
// descriptors the loops track: on the Go backend the listeners, conns,
// packet conns and files of Go's net and os (wrapped to be tracked), and on
// io_uring the listeners (whose queue holds accepted descriptors).

// owned is an object the executor's Close closes.
type owned interface{ closeByExecutor() }

// track adds o to what Close closes; once Close has begun it fails with
// ErrClosed.
func (e *Executor) track(o owned) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.isClosing() {
		return ErrClosed
	}
	e.owned[o] = struct{}{}
	return nil
}

// untrack forgets o (its owner closed it).
func (e *Executor) untrack(o owned) {
	e.mu.Lock()
	delete(e.owned, o)
	e.mu.Unlock()
}

// closeOwned closes everything tracked; Close calls it once closing is set,
// so nothing is tracked afterwards.
func (e *Executor) closeOwned() {
	e.mu.Lock()
	objs := make([]owned, 0, len(e.owned))
	for o := range e.owned {
		objs = append(objs, o)
	}
	clear(e.owned)
	e.mu.Unlock()
	// Mark every Go-backend object first, then close: a conn whose peer
	// the executor closed first reports ErrClosed, not the peer's EOF.
	for _, o := range objs {
		if g, ok := o.(interface{ state() *goState }); ok {
			g.state().closeBy(stateExec)
		}
	}
	for _, o := range objs {
		o.closeByExecutor()
	}
}

// goState is who closed a Go-backend object: 0 nobody yet, stateOwner its
// owner, stateExec the executor's Close.
type goState struct{ v atomic.Int32 }

const (
	stateOwner = 1
	stateExec  = 2
)

func (s *goState) byExec() bool { return s.v.Load() == stateExec }

// closeBy marks the object closed by who; only the first close wins.
func (s *goState) closeBy(who int32) bool { return s.v.CompareAndSwap(0, who) }

// netErr turns the error of a call on an object the executor closed (its
// own net.ErrClosed, or the reset or EOF of a peer the executor closed too)
// into errExecutorClosed, in the same *net.OpError, as on io_uring.
func (s *goState) netErr(err error) error {
	if err == nil || !s.byExec() {
		return err
	}
	if oe, ok := err.(*net.OpError); ok {
		cp := *oe
		cp.Err = errExecutorClosed{}
		return &cp
	}
	return &net.OpError{Op: "use", Net: "", Err: errExecutorClosed{}}
}

// goListener is a listener of Go's net tracked by the executor; the
// connections it accepts are tracked too.
type goListener struct {
	inner net.Listener // *net.TCPListener, *net.UnixListener or filtered
	e     *Executor
	st    goState
}

func (l *goListener) Accept() (net.Conn, error) {
	c, err := l.inner.Accept()
	if err != nil {
		return nil, l.st.netErr(err)
	}
	return l.e.goWrapConn(c)
}

func (l *goListener) state() *goState   { return &l.st }
func (c *goConn) state() *goState       { return &c.st }
func (p *goPacketConn) state() *goState { return &p.st }
func (g *goFile) state() *goState       { return &g.st }

func (l *goListener) Addr() net.Addr { return l.inner.Addr() }

func (l *goListener) Close() error {
	if l.st.closeBy(stateOwner) {
		l.e.untrack(l)
	} else if l.st.byExec() {
		return nil
	}
	return l.inner.Close()
}

func (l *goListener) closeByExecutor() {
	if l.st.closeBy(stateExec) || l.st.byExec() {
		l.inner.Close()
	}
}

// SetDeadline sets Accept's deadline, as the io_uring Listener has it.
func (l *goListener) SetDeadline(t time.Time) error {
	if d, ok := l.inner.(interface{ SetDeadline(time.Time) error }); ok {
		return l.st.netErr(d.SetDeadline(t))
	}
	return &net.OpError{Op: "set", Net: l.Addr().Network(), Addr: l.Addr(), Err: errors.ErrUnsupported}
}

// Dropped returns how many connections the filter dropped.
func (l *goListener) Dropped() uint64 {
	if d, ok := l.inner.(DropCounter); ok {
		return d.Dropped()
	}
	return 0
}

// goConn is a stream connection of Go's net (*net.TCPConn, *net.UnixConn)
// tracked by the executor, with what the io_uring Conn has besides
// net.Conn: CloseWrite, CloseRead, SyscallConn, ReadFrom and WriteTo (which
// keep Go's splice and sendfile).
type goConn struct {
	net.Conn
	e  *Executor
	st goState
}

// goWrapConn wraps and tracks a connection of Go's net; if the executor is
// closing, it closes it and fails.
func (e *Executor) goWrapConn(c net.Conn) (net.Conn, error) {
	w := &goConn{Conn: c, e: e}
	if err := e.track(w); err != nil {
		c.Close()
		return nil, &net.OpError{Op: "accept", Net: c.LocalAddr().Network(), Addr: c.LocalAddr(), Err: errExecutorClosed{}}
	}
	return w, nil
}

func (c *goConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		if err == io.EOF && c.st.byExec() { // the peer, closed by Close too
			err = &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: net.ErrClosed}
		}
		err = c.st.netErr(err)
	}
	return n, err
}

func (c *goConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		err = c.st.netErr(err)
	}
	return n, err
}

func (c *goConn) Close() error {
	if c.st.closeBy(stateOwner) {
		c.e.untrack(c)
	} else if c.st.byExec() {
		return nil
	}
	return c.Conn.Close()
}

func (c *goConn) closeByExecutor() {
	if c.st.closeBy(stateExec) || c.st.byExec() {
		c.Conn.Close()
	}
}

func (c *goConn) SetDeadline(t time.Time) error      { return c.st.netErr(c.Conn.SetDeadline(t)) }
func (c *goConn) SetReadDeadline(t time.Time) error  { return c.st.netErr(c.Conn.SetReadDeadline(t)) }
func (c *goConn) SetWriteDeadline(t time.Time) error { return c.st.netErr(c.Conn.SetWriteDeadline(t)) }

// CloseWrite shuts down the sending side, as the io_uring Conn's.
func (c *goConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return c.st.netErr(cw.CloseWrite())
	}
	return &net.OpError{Op: "close", Net: c.LocalAddr().Network(), Err: errors.ErrUnsupported}
}

// CloseRead shuts down the receiving side, as the io_uring Conn's.
func (c *goConn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return c.st.netErr(cr.CloseRead())
	}
	return &net.OpError{Op: "close", Net: c.LocalAddr().Network(), Err: errors.ErrUnsupported}
}

// SyscallConn returns the socket's raw connection.
func (c *goConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// ReadFrom implements io.ReaderFrom with the wrapped conn's (splice from
// another conn, sendfile from a file), seeing through a goConn source.
func (c *goConn) ReadFrom(r io.Reader) (int64, error) {
	src := r
	var srcSt *goState
	switch s := r.(type) {
	case *goConn:
		src, srcSt = s.Conn, &s.st
	case *io.LimitedReader:
		if sc, ok := s.R.(*goConn); ok {
			lr := *s
			lr.R = sc.Conn
			defer func() { s.N = lr.N }()
			src, srcSt = &lr, &sc.st
		}
	}
	var n int64
	var err error
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.Conn}, src)
	}
	if err != nil && srcSt != nil {
		err = srcSt.netErr(err)
	}
	return n, c.st.netErr(err)
}

// WriteTo implements io.WriterTo with the wrapped conn's, seeing through a
// goConn destination.
func (c *goConn) WriteTo(w io.Writer) (int64, error) {
	dst := w
	var dstSt *goState
	if d, ok := w.(*goConn); ok {
		dst, dstSt = d.Conn, &d.st
	}
	var n int64
	var err error
	if wt, ok := c.Conn.(io.WriterTo); ok {
		n, err = wt.WriteTo(dst)
	} else {
		n, err = io.Copy(dst, struct{ io.Reader }{c.Conn})
	}
	if err != nil && dstSt != nil {
		err = dstSt.netErr(err)
	}
	return n, c.st.netErr(err)
}

// goPacketConn is a UDP socket of Go's net (possibly filtered) tracked by
// the executor, with the methods of the io_uring PacketConn.
type goPacketConn struct {
	inner net.PacketConn // *net.UDPConn or *goFilteredPacketConn
	udp   *net.UDPConn
	e     *Executor
	st    goState
}

func newGoPacketConn(e *Executor, pc net.PacketConn) *goPacketConn {
	p := &goPacketConn{inner: pc, e: e}
	switch u := pc.(type) {
	case *net.UDPConn:
		p.udp = u
	case *goFilteredPacketConn:
		p.udp, _ = u.PacketConn.(*net.UDPConn)
	}
	return p
}

func (p *goPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := p.inner.ReadFrom(b)
	if err != nil {
		err = p.st.netErr(err)
	}
	return n, a, err
}

func (p *goPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := p.inner.WriteTo(b, addr)
	if err != nil {
		err = p.st.netErr(err)
	}
	return n, err
}

// ReadFromUDPAddrPort is ReadFrom returning the sender as a netip.AddrPort.
func (p *goPacketConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	if p.udp != nil && p.inner == net.PacketConn(p.udp) {
		n, ap, err := p.udp.ReadFromUDPAddrPort(b)
		return n, ap, p.st.netErr(err)
	}
	n, a, err := p.ReadFrom(b)
	return n, addrPortOf(a), err
}

// WriteToUDPAddrPort is WriteTo to a netip.AddrPort.
func (p *goPacketConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if p.udp != nil {
		n, err := p.udp.WriteToUDPAddrPort(b, to)
		return n, p.st.netErr(err)
	}
	return p.WriteTo(b, net.UDPAddrFromAddrPort(to))
}

func (p *goPacketConn) Close() error {
	if p.st.closeBy(stateOwner) {
		p.e.untrack(p)
	} else if p.st.byExec() {
		return nil
	}
	return p.inner.Close()
}

func (p *goPacketConn) closeByExecutor() {
	if p.st.closeBy(stateExec) || p.st.byExec() {
		p.inner.Close()
	}
}

func (p *goPacketConn) LocalAddr() net.Addr           { return p.inner.LocalAddr() }
func (p *goPacketConn) SetDeadline(t time.Time) error { return p.st.netErr(p.inner.SetDeadline(t)) }
func (p *goPacketConn) SetReadDeadline(t time.Time) error {
	return p.st.netErr(p.inner.SetReadDeadline(t))
}
func (p *goPacketConn) SetWriteDeadline(t time.Time) error {
	return p.st.netErr(p.inner.SetWriteDeadline(t))
}

// SyscallConn returns the socket's raw connection.
func (p *goPacketConn) SyscallConn() (syscall.RawConn, error) {
	if p.udp == nil {
		return nil, errors.ErrUnsupported
	}
	return p.udp.SyscallConn()
}

// Dropped returns how many datagrams the filter dropped.
func (p *goPacketConn) Dropped() uint64 {
	if d, ok := p.inner.(DropCounter); ok {
		return d.Dropped()
	}
	return 0
}

// goUDPConn is a connected UDP socket of Go's net, as Dial("udp") returns
// it on the Go backend: a net.Conn, and a packet conn as the io_uring
// UDPConn is.
type goUDPConn struct{ *goPacketConn }

func (c goUDPConn) Read(b []byte) (int, error) {
	n, err := c.udp.Read(b)
	if err != nil {
		err = c.st.netErr(err)
	}
	return n, err
}

func (c goUDPConn) Write(b []byte) (int, error) {
	n, err := c.udp.Write(b)
	if err != nil {
		err = c.st.netErr(err)
	}
	return n, err
}

func (c goUDPConn) RemoteAddr() net.Addr { return c.udp.RemoteAddr() }

// goFile is the *os.File of a Go-backend File, tracked by the executor. It
// is apart from the File so that a File dropped unclosed can still be
// collected (its cleanup closes the *os.File).
type goFile struct {
	osf *os.File
	e   *Executor
	st  goState
}

func (g *goFile) closeByExecutor() {
	if g.st.closeBy(stateExec) || g.st.byExec() {
		g.osf.Close()
	}
}

// closeByOwner is the File's Close (or cleanup).
func (g *goFile) closeByOwner() error {
	if g.st.closeBy(stateOwner) {
		g.e.untrack(g)
	} else if g.st.byExec() {
		return nil
	}
	return g.osf.Close()
}

// fileErr turns the error of a file the executor closed into one that is
// ErrClosed and os.ErrClosed, in the same *fs.PathError.
func (g *goFile) fileErr(err error) error {
	if err == nil || !g.st.byExec() || !(errors.Is(err, os.ErrClosed) || errors.Is(err, syscall.EBADF)) {
		return err
	}
	if pe, ok := err.(*fs.PathError); ok {
		cp := *pe
		cp.Err = errFileExecClosed{}
		return &cp
	}
	return &fs.PathError{Op: "use", Path: g.osf.Name(), Err: errFileExecClosed{}}
}

// errFileExecClosed is the error of file calls cut short by, or made after,
// the executor's Close on the Go backend: ErrClosed and os.ErrClosed.
type errFileExecClosed struct{}

func (errFileExecClosed) Error() string { return "file already closed (executor closed)" }

func (errFileExecClosed) Is(target error) bool { return target == os.ErrClosed || target == ErrClosed }
