package executor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// Listener accepts stream connections (TCP or Unix) on io_uring, as Listen
// returns it. Each socket has one multishot ACCEPT in flight; connections the
// kernel accepted wait in a queue, and Accept pops one, or waits. A queue
// grown past acceptQueueMax pauses accepting until Accept drains it (the
// kernel's backlog holds the rest).
type Listener struct {
	e         *Executor
	net       string
	socks     []*lnSock
	addr      net.Addr
	filter    func(netip.AddrPort) Verdict
	keepAlive *net.KeepAliveConfig
	dropped   atomic.Uint64
	unlink    string // Unix socket path to remove on Close
	ctx       context.Context
	stop      context.CancelCauseFunc // with errClosedFD

	amu sync.Mutex // one Accept at a time
	dl  deadline   // Accept's

	// Accept state; a socket's onCQE takes mu with its loop locked.
	mu      sync.Mutex
	closed  bool
	byExec  bool       // closed by the executor's Close
	queue   []accepted // oldest first
	qhead   int
	aerr    syscall.Errno // an accept error not yet reported
	waiting bool
	wake    chan struct{}
}

// accepted is a descriptor a socket's ACCEPT returned.
type accepted struct {
	fd int
	s  *lnSock
}

// lnSock is one listening socket and its multishot accept.
type lnSock struct {
	ln     *Listener
	l      *loop
	fd     *sysFD
	armed  bool // guarded by ln.mu
	op     *op  // the accept (in flight or ended), not yet released; ln.mu
	cur    *op  // the accept being armed or in flight (loop lock)
	capped bool // its cancellation was asked: the queue is full; ln.mu
	onCQE  func(res int32, flags uint32)
}

const acceptQueueMax = 512

// Listen listens on a TCP ("tcp", "tcp4", "tcp6") or Unix ("unix") address,
// like net.Listen, and returns a *Listener whose connections are *Conn. With
// the Go backend (io_uring refused) it returns net.Listen's listener, wrapped
// to apply WithFilter.
func (e *Executor) Listen(network, address string, opts ...ListenOption) (net.Listener, error) {
	cfg, err := listenOptions(network, address, false, opts)
	if err != nil {
		return nil, err
	}
	if e.backend == BackendGo {
		return e.goListen(network, address, &cfg)
	}
	k, err := e.listenKind(network, address, false)
	if err != nil {
		return nil, err
	}
	n := 1
	if cfg.reusePort && !k.unix {
		n = len(e.loops)
	}
	var fds []int
	var bound unix.Sockaddr
	var laddr net.Addr // as resolved, for an error past resolving
	err = inNamespace(cfg.namespace, func() error {
		family, sa, v6only, resolved, err := resolveStream(network, k, address)
		if err != nil {
			return err
		}
		laddr = resolved
		fds, bound, err = bindSockets(family, k, sa, v6only, n, cfg.reusePort)
		return err
	})
	if err != nil {
		return nil, listenOpError(network, laddr, err)
	}
	ctx, stop := context.WithCancelCause(context.Background())
	ln := &Listener{e: e, net: network, filter: cfg.filter, keepAlive: cfg.keepAlive, ctx: ctx, stop: stop, wake: make(chan struct{}, 1)}
	for i, fd := range fds {
		l := e.loop()
		if n > 1 {
			l = e.loops[i%len(e.loops)]
		}
		s := &lnSock{ln: ln, l: l, fd: newSysFD(l, fd)}
		s.onCQE = s.onAccept
		ln.socks = append(ln.socks, s)
	}
	ln.addr = netAddrOf(network, bound)
	if k.unix && !strings.HasPrefix(address, "@") {
		ln.unlink = address
	}
	if err := e.track(ln); err != nil { // the executor's Close began meanwhile
		ln.Close()
		return nil, listenError(network, address, errExecutorClosed{})
	}
	return ln, nil
}

// listenOptions is the opening Listen (packet false) and ListenPacket
// share: the options, and the checks made before the backend is chosen.
func listenOptions(network, address string, packet bool, opts []ListenOption) (listenConfig, error) {
	var cfg listenConfig
	for _, o := range opts {
		o.applyListen(&cfg)
	}
	if err := checkCall(network, packet); err != nil {
		return cfg, listenOpError(network, nil, err)
	}
	switch {
	case packet && cfg.filter != nil:
		return cfg, listenError(network, address, errors.New("WithFilter is an option of Listen"))
	case !packet && cfg.packetFilter != nil:
		return cfg, listenError(network, address, errors.New("WithPacketFilter is an option of ListenPacket"))
	}
	return cfg, nil
}

// listenKind is the rest of that opening on io_uring: the network's kind,
// and a refusal once the executor is closing.
func (e *Executor) listenKind(network, address string, packet bool) (netKind, error) {
	k, err := parseNetwork(network, packet)
	if err != nil {
		return k, listenOpError(network, nil, err)
	}
	if e.isClosing() {
		return k, listenError(network, address, errExecutorClosed{})
	}
	return k, nil
}

func listenError(network, address string, err error) error {
	return listenOpError(network, stringAddr{network, address}, err)
}

// listenOpError is a listen error as net makes it: no address if the
// network or address did not parse or resolve, else addr as resolved.
func listenOpError(network string, addr net.Addr, err error) error {
	return &net.OpError{Op: "listen", Net: network, Addr: addr, Err: netError(err)}
}

// stringAddr is a net.Addr for an address not resolved.
type stringAddr struct{ net, addr string }

func (a stringAddr) Network() string { return a.net }
func (a stringAddr) String() string  { return a.addr }

func (e *Executor) isClosing() bool {
	select {
	case <-e.closing:
		return true
	default:
		return false
	}
}

// Accept waits for and returns the next connection (a *Conn) that the filter,
// if any, lets through.
func (ln *Listener) Accept() (net.Conn, error) {
	ln.amu.Lock()
	defer ln.amu.Unlock()
	var idle [64]*lnSock
	for {
		ln.mu.Lock()
		if ln.closed {
			byExec := ln.byExec
			ln.mu.Unlock()
			if byExec {
				return nil, ln.opError(errExecutorClosed{})
			}
			return nil, ln.opError(net.ErrClosed)
		}
		if ln.dl.passed() {
			ln.mu.Unlock()
			return nil, ln.opError(os.ErrDeadlineExceeded)
		}
		if ln.qhead < len(ln.queue) {
			a := ln.queue[ln.qhead]
			if ln.qhead++; ln.qhead == len(ln.queue) {
				ln.queue, ln.qhead = ln.queue[:0], 0
			}
			ln.mu.Unlock()
			if c := ln.admit(a); c != nil {
				return c, nil
			}
			continue
		}
		if errno := ln.aerr; errno != 0 {
			ln.aerr = 0
			ln.mu.Unlock()
			return nil, ln.opError(os.NewSyscallError("accept", errno))
		}
		n := 0
		for _, s := range ln.socks {
			if !s.armed && n < len(idle) {
				idle[n] = s
				n++
			}
		}
		if n > 0 {
			ln.mu.Unlock()
			for _, s := range idle[:n] {
				if err := s.arm(); err != nil {
					ln.mu.Lock()
					byExec := ln.byExec
					ln.mu.Unlock()
					if byExec { // the executor's Close closed the socket
						err = errExecutorClosed{}
					}
					return nil, ln.opError(err)
				}
			}
			continue
		}
		ln.waiting = true
		ln.mu.Unlock()
		for _, s := range ln.socks {
			s.l.reapReady()
		}
		select {
		case <-ln.wake:
		case <-ln.ctx.Done():
		case <-ln.dl.done():
		}
	}
}

// admit runs the filter on an accepted descriptor and makes it a Conn, or
// closes it. With ReusePort a connection stays on the loop of the socket
// that accepted it; otherwise connections go round the loops.
func (ln *Listener) admit(a accepted) *Conn {
	var raddr net.Addr
	if ln.filter != nil {
		var ap netip.AddrPort
		if ln.net != "unix" {
			sa, err := unix.Getpeername(a.fd)
			if err != nil { // gone already
				unix.Close(a.fd)
				return nil
			}
			ap, raddr = addrPortOfSockaddr(sa), netAddrOf(ln.net, sa)
		}
		if ln.filter(ap) == Drop {
			unix.Close(a.fd)
			ln.dropped.Add(1)
			a.s.l.net.dropped.Add(1)
			return nil
		}
	}
	l := a.s.l
	if len(ln.socks) == 1 {
		l = ln.e.loop()
	}
	if ln.net != "unix" {
		setKeepAlive(a.fd, ln.keepAlive)
	}
	c := newConn(l, a.fd, ln.net)
	c.raddr = raddr
	return c
}

// arm starts the socket's multishot accept, first releasing the one that
// ended. The caller holds amu.
func (s *lnSock) arm() error {
	ln := s.ln
	ln.mu.Lock()
	old := s.op
	s.op = nil
	ln.mu.Unlock()
	if old != nil {
		s.end(old)
	}
	ln.mu.Lock()
	s.armed, s.capped = true, false
	ln.mu.Unlock()
	fd := s.fd.fd
	err := s.l.startHeld(s.fd, func(sqe *ring.SQE, o *op) {
		sqe.PrepAcceptMultishot(fd, unix.SOCK_CLOEXEC)
		o.onCQE = s.onCQE
		s.cur = o
	}, func(o *op) bool {
		ln.mu.Lock()
		defer ln.mu.Unlock()
		if ln.closed {
			return false
		}
		s.op = o
		return true
	})
	if err != nil {
		ln.mu.Lock()
		s.armed = false
		ln.mu.Unlock()
		return netError(err)
	}
	return nil
}

// end waits for an accept's last CQE and releases it.
func (s *lnSock) end(o *op) { s.l.endHeld(s.fd, o) }

// onAccept handles each CQE of the multishot accept, with the loop locked.
func (s *lnSock) onAccept(res int32, flags uint32) {
	ln := s.ln
	more := flags&ring.CQEFMore != 0
	ln.mu.Lock()
	if res >= 0 {
		if ln.closed {
			unix.Close(int(res))
		} else {
			ln.queue = append(ln.queue, accepted{int(res), s})
			if more && !s.capped && len(ln.queue)-ln.qhead >= acceptQueueMax {
				s.capped = true
				s.l.cancelFromCQE(s.cur)
			}
		}
	} else if !endedByCancel(res) {
		ln.aerr = syscall.Errno(-res)
	}
	if !more {
		s.armed = false
	}
	if ln.waiting {
		ln.waiting = false
		select {
		case ln.wake <- struct{}{}:
		default:
		}
	}
	ln.mu.Unlock()
}

// Close stops listening: a blocked Accept returns net.ErrClosed, the
// connections accepted but not yet returned are closed, and a Unix socket's
// file is removed.
func (ln *Listener) Close() error {
	ln.mu.Lock()
	if ln.closed {
		byExec := ln.byExec
		ln.mu.Unlock()
		if byExec {
			return nil
		}
		return ln.opErrorOp("close", net.ErrClosed)
	}
	ln.e.untrack(ln)
	return ln.closeLocked()
}

// closeByExecutor is the executor's Close of the listener: as Close, and
// then Accept fails with ErrClosed.
func (ln *Listener) closeByExecutor() {
	ln.mu.Lock()
	if ln.closed {
		ln.mu.Unlock()
		return
	}
	ln.byExec = true
	ln.closeLocked()
}

// closeLocked closes the listener; ln.mu is held and is unlocked.
func (ln *Listener) closeLocked() error {
	ln.closed = true
	queued := ln.queue[ln.qhead:]
	ln.queue, ln.qhead = nil, 0
	for _, a := range queued {
		unix.Close(a.fd)
	}
	ops := make([]*op, len(ln.socks))
	for i, s := range ln.socks {
		ops[i], s.op = s.op, nil
	}
	ln.mu.Unlock()
	ln.stop(errClosedFD)
	ln.dl.stop()
	for i, s := range ln.socks {
		s.fd.Close()
		if ops[i] != nil {
			s.end(ops[i])
		}
	}
	if ln.unlink != "" {
		unix.Unlink(ln.unlink)
	}
	return nil
}

// SetDeadline sets the deadline for Accept, like net.TCPListener's: a
// blocked Accept and later ones fail with an error that wraps
// os.ErrDeadlineExceeded (a net.Error whose Timeout is true) once t has
// passed; the zero time removes the deadline.
func (ln *Listener) SetDeadline(t time.Time) error {
	ln.mu.Lock()
	closed := ln.closed
	ln.mu.Unlock()
	if closed {
		return ln.opErrorOp("set", net.ErrClosed)
	}
	ln.dl.set(t)
	return nil
}

// Addr returns the address listened on (*net.TCPAddr or *net.UnixAddr):
// the one bound, so with the port the kernel picked for port 0, and "::"
// for a dual-stack wildcard, as net.Listener's Addr.
func (ln *Listener) Addr() net.Addr { return ln.addr }

// Dropped returns how many connections the filter dropped.
func (ln *Listener) Dropped() uint64 { return ln.dropped.Load() }

func (ln *Listener) opError(err error) error { return ln.opErrorOp("accept", err) }

func (ln *Listener) opErrorOp(op string, err error) error {
	return &net.OpError{Op: op, Net: ln.net, Addr: ln.addr, Err: netError(err)}
}

var _ net.Listener = (*Listener)(nil)
