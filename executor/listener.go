//go:build linux

package executor

import (
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

	amu sync.Mutex // one Accept at a time
	dl  deadline   // Accept's

	// Accept state; a socket's accept handler takes mu with its loop locked.
	// The listener's closed state is its sockets' (socks[0]'s word says it
	// for all: Close marks them together, under mu).
	mu    sync.Mutex
	queue []accepted // oldest first
	qhead int
	aerr  syscall.Errno // an accept error not yet reported
	w     waker         // Accept sleeping for a connection
}

// accepted is a descriptor a socket's ACCEPT returned.
type accepted struct {
	fd int
	s  *lnSock
}

// lnSock is one listening socket and its multishot accept (guarded by ln.mu).
type lnSock struct {
	ln *Listener
	l  *loop
	fd *sysFD
	ms multishot
}

const acceptQueueMax = 512

// Listen listens on a TCP ("tcp", "tcp4", "tcp6") or Unix ("unix") address,
// like net.Listen, and returns a *Listener whose connections are *Conn. With
// the Go backend (io_uring refused) it returns net.Listen's listener, wrapped
// to apply WithFilter.
func (e *Executor) Listen(network, address string, opts ...NetOption) (net.Listener, error) {
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
		fds, bound, err = bindSockets(family, k, sa, v6only, n, cfg.reusePort, cfg.sharePort)
		return err
	})
	if err != nil {
		return nil, listenOpError(network, laddr, err)
	}
	ln := &Listener{e: e, net: network, filter: cfg.filter, keepAlive: cfg.keepAlive, w: newWaker()}
	ln.dl.expire = ln.w.poke
	for i, fd := range fds {
		l := e.loop()
		if n > 1 {
			l = e.loops[i%len(e.loops)]
		}
		s := &lnSock{ln: ln, l: l, fd: newSysFD(l, fd)}
		s.ms.init(l, s.fd, &ln.mu, &ln.w, prepAccept, s.handle)
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

// Accept waits for and returns the next connection (a *Conn) that the filter,
// if any, lets through.
func (ln *Listener) Accept() (net.Conn, error) {
	ln.amu.Lock()
	defer ln.amu.Unlock()
	var idle [64]*lnSock
	for {
		ln.mu.Lock()
		if err := ln.closedErr(); err != nil {
			ln.mu.Unlock()
			return nil, ln.opError(err)
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
			if !s.ms.armed && n < len(idle) {
				idle[n] = s
				n++
			}
		}
		if n > 0 {
			ln.mu.Unlock()
			for _, s := range idle[:n] {
				if err := s.ms.arm(); err != nil {
					return nil, ln.opError(err)
				}
			}
			continue
		}
		ln.w.sleepLocked()
		ln.mu.Unlock()
		for _, s := range ln.socks {
			s.l.reapReady()
		}
		ln.w.wait() // a connection or an error; Close; the deadline
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
	return newConn(l, a.fd, ln.net, raddr)
}

func prepAccept(sqe *ring.SQE, fd int) { sqe.PrepAcceptMultishot(fd, unix.SOCK_CLOEXEC) }

// handle handles each CQE of the socket's accept, with the loop locked and
// ln.mu held; full: the queue is as long as it may grow.
func (s *lnSock) handle(res int32, _ uint32) (full bool) {
	ln := s.ln
	switch {
	case res >= 0 && s.fd.isClosing():
		unix.Close(int(res))
	case res >= 0:
		ln.queue = append(ln.queue, accepted{int(res), s})
		return len(ln.queue)-ln.qhead >= acceptQueueMax
	case !endedByCancel(res):
		ln.aerr = syscall.Errno(-res)
	}
	return false
}

// closedErr is nil while the listener is open, else what Accept reports
// (see sysFD.closedErr).
func (ln *Listener) closedErr() error { return ln.socks[0].fd.closedErr() }

// Close stops listening: a blocked Accept returns net.ErrClosed, the
// connections accepted but not yet returned are closed, and a Unix socket's
// file is removed.
func (ln *Listener) Close() error { return ln.close(fdOwner) }

// closeByExecutor is the executor's Close of the listener: as Close, and
// then Accept fails with ErrClosed.
func (ln *Listener) closeByExecutor() { ln.close(fdByExec) }

// close closes the listener by its owner (fdOwner) or the executor
// (fdByExec): it marks every socket's descriptor closed (sysFD.markClosed),
// under mu so that no accept queues a connection afterwards, then cancels
// the accepts and releases them. A listener already closed by the executor
// stays so, and its owner's Close returns nil.
func (ln *Listener) close(by uint64) error {
	ln.mu.Lock()
	first, open := ln.socks[0].fd.markClosed(by)
	if !open {
		ln.mu.Unlock()
		if by == fdOwner && !first {
			return ln.opErrorOp("close", net.ErrClosed)
		}
		return nil
	}
	for _, s := range ln.socks[1:] {
		s.fd.markClosed(by)
	}
	queued := ln.queue[ln.qhead:]
	ln.queue, ln.qhead = nil, 0
	for _, a := range queued {
		unix.Close(a.fd)
	}
	ln.mu.Unlock()
	if by == fdOwner {
		ln.e.untrack(ln)
	}
	ln.w.poke()
	ln.dl.stop()
	for _, s := range ln.socks {
		s.fd.dropOpen() // cancels its accept
		s.ms.release()
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
	if err := ln.closedErr(); err != nil {
		return ln.opErrorOp("set", err)
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
