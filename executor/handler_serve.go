//go:build linux

package executor

import (
	"errors"
	"net"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// serveRing is Serve on io_uring: a listening socket per loop (one for
// Unix, whose loop 0 hands connections round robin), and a loop per thread.
func (e *Executor) serveRing(network, address string, h Handler, cfg serveConfig) (*Server, error) {
	asked := cfg
	sz, err := sizeRings("Serve", cfg.loops, cfg.entries, minHLoopEntries, cfg.memlockCost)
	if err != nil {
		return e.serveFallback(network, address, h, asked, err)
	}
	cfg.entries, cfg.loops = sz.entries, sz.loops
	k, err := parseNetwork(network, false)
	if err != nil {
		return nil, listenError(network, address, err)
	}
	if k.unix {
		cfg.direct = false // accepted fds are handed between loops
	}
	family, sa, v6only, err := streamSockaddr(network, k, address)
	if err != nil {
		return nil, listenError(network, address, err)
	}
	nsock := cfg.loops
	if k.unix {
		nsock = 1
	}
	fds, sa, err := bindSockets(family, k, sa, v6only, nsock, false, cfg.sharePort)
	if err != nil {
		return nil, listenError(network, address, err)
	}
	s := &Server{e: e, h: h, cfg: cfg, addr: netAddrOf(network, sa), done: make(chan struct{}),
		backend: BackendIOURing, reason: sz.note}
	if k.unix && !strings.HasPrefix(address, "@") {
		s.unlink = address
	}
	s.handoff = k.unix && cfg.loops > 1
	watch, err := s.watch()
	if err != nil {
		closeAll(fds)
		s.removeSocketFile()
		return nil, listenError(network, address, err)
	}
	for i := 0; i < cfg.loops; i++ {
		lnfd := -1
		if i < len(fds) {
			lnfd = fds[i]
		}
		l, err := newHLoop(s, i, lnfd)
		if err != nil {
			closeAll(fds[i:])
			for _, l := range s.loops { // not started: nothing but the eventfd
				l.efdClosed, l.stopReq = true, true
				unix.Close(l.efd)
				close(l.exited)
			}
			s.Close()
			watch.Wait()
			return nil, listenError(network, address, err)
		}
		s.loops = append(s.loops, l)
	}
	if errs := startLoops(s.loops); len(errs) > 0 {
		s.Close()
		watch.Wait()
		if memlockRefused(errs) {
			return e.serveFallback(network, address, h, asked, &memlockError{what: "Serve", err: errs[0]})
		}
		return nil, listenError(network, address, errors.Join(errs...))
	}
	return s, nil
}

// startLoops starts each loop on its own goroutine (and thread) and
// returns the errors of those whose set-up failed.
func startLoops[L interface{ run(inits chan<- error) }](loops []L) []error {
	inits := make(chan error, len(loops))
	for _, l := range loops {
		go l.run(inits)
	}
	var errs []error
	for range loops {
		if err := <-inits; err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

var wakeOne = [8]byte{1}

// wakeFD wakes an io_uring loop: a write to its eventfd.
func wakeFD(efd int) { unix.Write(efd, wakeOne[:]) }

// closeFD closes a descriptor the kernel gave an io_uring loop.
func closeFD(fd int) { unix.Close(fd) }

// inFlight is how many of the loop's ops are live.
func (l *hloop) inFlight() int { return l.table.live }

// publishRing adds the ring's counters to the loop's.
func (l *hloop) publishRing() {
	if l.r != nil {
		rs := l.r.Stats()
		l.st[ctrEnters], l.st[ctrCQOverflows] = rs.Enters, rs.OverflowFlushes
		l.st[ctrCQDropped] = uint64(l.r.Overflowed())
	}
	l.st[ctrStale] = l.table.stale
}

// sockName is an io_uring connection's local (or, peer, remote) address.
func sockName(fd int32, network string, peer bool) net.Addr {
	get := unix.Getsockname
	if peer {
		get = unix.Getpeername
	}
	if sa, err := get(int(fd)); err == nil {
		return netAddrOf(network, sa)
	}
	return nil
}

// reusePortControl sets SO_REUSEPORT on a socket Go's net makes, if asked.
func reusePortControl(on bool) func(network, address string, c syscall.RawConn) error {
	if !on {
		return nil
	}
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}
}
