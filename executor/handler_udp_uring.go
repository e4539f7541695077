//go:build linux

package executor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// ServePacket on io_uring: a loop per thread, each with its own
// SO_REUSEPORT socket, ring and buffer ring.

// pNamelen is the room each receive buffer keeps for the sender's address,
// and pHead the header and address before the payload.
const (
	pNamelen = unix.SizeofSockaddrInet6
	pHead    = ring.SizeofRecvmsgOut + pNamelen
)

// pring is a loop's io_uring state.
type pring struct {
	r      *ring.Ring
	table  opTable
	cqes   [256]ring.CQE
	bufs   *bufPool
	fd     int // the loop's socket
	family int
	efd    int // eventfd that Close writes to wake the loop; 0 if none
	efdBuf [8]byte
	efdMu  sync.Mutex // stop's write against teardown's close

	rmsg           unix.Msghdr // the multishot RECVMSG's: only its name length counts
	recvOp, wakeOp *op
	recvCB, wakeCB func(int32, uint32)
	recvCancel     bool
	wakeCancel     bool
	failed         error
	idle           bool // ServeKeepP: a wait ran out with nothing; sleep
	recvDead       bool // the kernel refused the multishot RECVMSG
	errLogged      time.Time
}

// psend is a reply's message header, name and iovec, where the kernel
// reads them until the SENDMSG completes, and the op's callback.
type psend struct {
	msg msgBuf
	cb  func(int32, uint32)
}

func (p *ploop) initSend(r *preply) {
	r.cb = func(res int32, _ uint32) { p.sent(r, res < 0) }
}

// wakeStop wakes an io_uring loop so that it sees stopReq.
func (p *ploop) wakeStop() {
	p.efdMu.Lock()
	if p.efd > 0 {
		wakeFD(p.efd)
	}
	p.efdMu.Unlock()
}

func (e *Executor) servePacketRing(network, address string, h PacketHandler, cfg serveConfig) (*PacketServer, error) {
	sz, err := sizeRings("ServePacket", cfg.loops, cfg.entries, minHLoopEntries, cfg.memlockCost)
	if err != nil {
		return e.servePacketFallback(network, address, h, cfg, err)
	}
	cfg.entries, cfg.loops = sz.entries, sz.loops
	k, err := e.listenKind(network, address, true)
	if err != nil {
		return nil, err
	}
	family, sa, v6only, _, _, err := listenSockaddr(context.Background(), network, k, address)
	if err != nil {
		return nil, listenError(network, address, err)
	}
	fds, sa, err := bindSockets(family, k, sa, v6only, cfg.loops, false, cfg.sharePort)
	if err != nil {
		return nil, listenError(network, address, err)
	}
	s := &PacketServer{e: e, h: h, cfg: cfg, addr: netAddrOf(network, sa), done: make(chan struct{}),
		backend: BackendIOURing, reason: sz.note}
	for i := range fds {
		p := newPloop(s, i)
		p.fd, p.family = fds[i], family
		s.loops = append(s.loops, p)
	}
	for _, p := range s.loops {
		if p.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
			for _, p := range s.loops {
				if p.efd > 0 {
					unix.Close(p.efd)
				}
			}
			closeAll(fds)
			return nil, listenError(network, address, os.NewSyscallError("eventfd", err))
		}
	}
	watch, err := s.watch()
	if err != nil {
		for _, p := range s.loops {
			unix.Close(p.efd)
		}
		closeAll(fds)
		return nil, listenError(network, address, err)
	}
	if errs := startLoops(s.loops); len(errs) > 0 {
		s.Close()
		watch.Wait()
		if memlockRefused(errs) {
			return e.servePacketFallback(network, address, h, cfg, &memlockError{what: "ServePacket", err: errs[0]})
		}
		return nil, listenError(network, address, errors.Join(errs...))
	}
	return s, nil
}

// servePacketFallback runs a server the kernel refused io_uring on Go's
// net, with one warning; under WithStrict it returns the refusal instead.
func (e *Executor) servePacketFallback(network, address string, h PacketHandler, cfg serveConfig, why error) (*PacketServer, error) {
	if e.strict {
		return nil, listenError(network, address, why)
	}
	s, err := e.servePacketGo(network, address, h, cfg, why.Error())
	if err == nil {
		e.logger.Warn("kasync: serve packet: io_uring refused; this server runs on Go's net",
			"net", network, "addr", s.Addr().String(), "err", why)
	}
	return s, err
}

// run is an io_uring loop's goroutine, locked to its thread.
func (p *ploop) run(inits chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	labelLoop("serve-packet", p.id)
	p.goid.Store(currentGoroutine())
	err := p.setup()
	inits <- err
	if err == nil {
		for p.turn() {
		}
	}
	p.teardown()
	close(p.exited)
}

func (p *ploop) setup() error {
	cfg := &p.s.cfg
	var err error
	if p.r, err = newLoopRing(cfg); err != nil {
		return err
	}
	if !p.r.Supports(ring.OpRecvmsg) {
		return fmt.Errorf("executor: ServePacket: the kernel has no IORING_OP_RECVMSG")
	}
	if p.bufs, err = newBufPool(p.r, 0, RecvPlain, pHead+cfg.bufSize, cfg.bufCount); err != nil {
		return err
	}
	p.rmsg = unix.Msghdr{Namelen: pNamelen}
	p.recvCB, p.wakeCB = p.onRecv, p.onWake
	return nil
}

func (p *ploop) teardown() {
	unix.Close(p.fd)
	if p.bufs != nil {
		p.bufs.close()
	}
	if p.r != nil {
		unchargeRing(p.r)
		p.r.Close()
	}
	p.efdMu.Lock()
	unix.Close(p.efd)
	p.efd = 0
	p.efdMu.Unlock()
	p.publish()
}

// turn: the stop request, the turn's SQEs (receive, wake-up read, replies),
// one enter that submits them and waits, and the completions.
func (p *ploop) turn() bool {
	if !p.stopping && p.stopReq.Load() {
		p.stopping = true
		p.dropQueue()
	}
	p.flush()
	if p.stopping && p.table.live == 0 {
		return false
	}
	var err error
	switch keepP := p.s.cfg.keepP; {
	case keepP && p.idle:
		_, err = p.r.SubmitAndSleep(1)
	case keepP:
		// As a Serve loop's (hloop.turn): raw waits of at most keepPSlice
		// while busy, a blocking one that hands the P back once idle.
		_, err = p.r.SubmitAndWaitTimeout(1, keepPSlice)
		p.idle = err == syscall.ETIME && p.r.CQReady() == 0
	default:
		_, err = p.r.SubmitAndWait(1)
	}
	p.st[pctrTurns]++
	if p.s.cfg.keepP && (err == syscall.ETIME || p.st[pctrTurns]%64 == 0) {
		runtime.Gosched()
	}
	if err != nil && err != syscall.ETIME && err != syscall.EBUSY && err != syscall.EAGAIN && err != syscall.EINTR {
		p.failed = fmt.Errorf("executor: io_uring_enter: %w", err)
		p.s.cfg.logger.Error("kasync: serve packet loop stops", "loop", p.id, "err", p.failed)
		return false
	}
	p.reap()
	p.publish()
	return true
}

func (p *ploop) sqeSpace(n uint32) bool {
	if p.r.SQSpace() >= n {
		return true
	}
	p.r.Submit()
	return p.r.SQSpace() >= n
}

// sqe returns a free SQE; callers made room with sqeSpace.
func (p *ploop) sqe() *ring.SQE {
	s, err := p.r.GetSQE()
	if err != nil {
		panic("executor: no SQE after sqeSpace: " + err.Error())
	}
	return s
}

func (p *ploop) begin(s *ring.SQE, cb func(int32, uint32)) *op {
	o := p.table.alloc(nil)
	o.onCQE = cb
	p.table.begin(o, s)
	return o
}

func (p *ploop) cancel(o *op) {
	if p.table.markCancel(o) {
		s := p.sqe()
		prepCancel(s, opTarget(o))
	}
}

func (p *ploop) flush() {
	if !p.sqeSpace(2) {
		return
	}
	if p.stopping {
		if p.recvOp != nil && !p.recvCancel {
			p.recvCancel = true
			p.cancel(p.recvOp)
		}
		if p.wakeOp != nil && !p.wakeCancel {
			p.wakeCancel = true
			p.cancel(p.wakeOp)
		}
		return
	}
	if p.recvOp == nil && !p.recvDead {
		s := p.sqe()
		s.PrepRecvmsgMultishot(p.fd, &p.rmsg, 0, p.bufs.Group())
		p.recvOp = p.begin(s, p.recvCB)
	}
	if p.wakeOp == nil {
		s := p.sqe()
		s.PrepRead(p.efd, p.efdBuf[:], 0)
		p.wakeOp = p.begin(s, p.wakeCB)
	}
	sent := 0
	for _, r := range p.queue {
		if !p.sqeSpace(1) {
			break
		}
		if !r.msg.name.setAddrPort(r.to, p.family) {
			p.inflight++
			p.sent(r, true)
			sent++
			continue
		}
		r.msg.prepare(r.buf, r.msg.name.len)
		s := p.sqe()
		s.PrepSendmsg(p.fd, &r.msg.hdr, 0)
		p.begin(s, r.cb)
		p.inflight++
		sent++
	}
	n := copy(p.queue, p.queue[sent:])
	clear(p.queue[n:])
	p.queue = p.queue[:n]
}

func (p *ploop) onWake(int32, uint32) { p.wakeOp = nil }

// onRecv handles the multishot RECVMSG's CQEs: a datagram each, and at the
// last one the receive's end (re-armed by flush unless stopping).
func (p *ploop) onRecv(res int32, flags uint32) {
	if res >= 0 && flags&ring.CQEFBuffer != 0 {
		bid := uint16(flags >> 16)
		out, name, _, payload, ok := ring.ParseRecvmsgOut(p.bufs.Buf(bid)[:res], pNamelen, 0)
		if ok {
			p.handle(addrPortOfRaw(name), payload, out.Flags&unix.MSG_TRUNC != 0)
		}
		p.bufs.recycle(bid)
	}
	if flags&ring.CQEFMore != 0 {
		return
	}
	p.recvOp = nil
	switch {
	case res == -int32(syscall.ENOBUFS):
		p.st[pctrNoBufs]++
	case res == -int32(syscall.EINVAL):
		// A kernel without multishot RECVMSG (before 6.0): restarting
		// would spin; the loop stops receiving and says so.
		p.st[pctrRecvErrs]++
		p.recvDead = true
		p.s.cfg.logger.Error("kasync: serve packet: multishot RECVMSG refused (Linux 6.0 has it); this loop receives no more",
			"loop", p.id, "errno", syscall.EINVAL.Error())
	case res < 0 && !endedByCancel(res):
		p.st[pctrRecvErrs]++
		if now := time.Now(); now.Sub(p.errLogged) > time.Second {
			p.errLogged = now
			p.s.cfg.logger.Warn("kasync: serve packet: receive failed, restarting", "loop", p.id,
				"errno", syscall.Errno(-res).Error())
		}
	}
}

func (p *ploop) reap() {
	for p.r.CQReady() > 0 {
		n := p.r.PeekBatch(p.cqes[:])
		p.r.CQAdvance(uint32(n))
		for i := 0; i < n; i++ {
			p.table.dispatch(&p.cqes[i])
		}
	}
	p.bufs.publish()
}

// addrPortOfRaw parses a sockaddr_in or sockaddr_in6 the kernel wrote,
// without allocating (IPv4-mapped addresses as IPv4).
func addrPortOfRaw(b []byte) netip.AddrPort {
	if len(b) < 2 {
		return netip.AddrPort{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= unix.SizeofSockaddrInet4 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:]))
		}
	case unix.AF_INET6:
		if len(b) >= unix.SizeofSockaddrInet6 {
			ip := netip.AddrFrom16([16]byte(b[8:24]))
			if ip.Is4In6() {
				ip = ip.Unmap()
			} else if zone := binary.NativeEndian.Uint32(b[24:]); zone != 0 {
				ip = ip.WithZone(zoneName(zone))
			}
			return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[2:]))
		}
	}
	return netip.AddrPort{}
}

// setAddrPort fills r with ap for a socket of family, without allocating:
// an IPv4 address IPv4-mapped on an IPv6 socket. False if ap cannot be
// sent to from such a socket.
func (r *rawSockaddr) setAddrPort(ap netip.AddrPort, family int) bool {
	ip := ap.Addr()
	switch {
	case family == unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.any))
		*a = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
		putPort(&a.Port, int(ap.Port()))
		if ip.Zone() != "" {
			a.Scope_id = sockaddrOf(ap).(*unix.SockaddrInet6).ZoneId // link-local: rare, may allocate
		}
		r.len = unix.SizeofSockaddrInet6
	case ip.Is4() || ip.Is4In6():
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.any))
		*a = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		putPort(&a.Port, int(ap.Port()))
		r.len = unix.SizeofSockaddrInet4
	default:
		return false
	}
	return true
}
