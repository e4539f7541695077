package executor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// UDP on the fast path's loops: ServePacket runs a PacketHandler per
// datagram on loops that own their threads, as Serve runs a Handler per
// connection. On io_uring (handler_udp_uring.go) each loop has its own
// SO_REUSEPORT socket, one multishot RECVMSG into the loop's buffer ring and
// a SENDMSG per reply, all submitted with the turn's one enter; on the Go
// backend (handler_udp_go.go) a reader goroutine per loop feeds the loop
// from a net.UDPConn. One handler contract for both.

// PacketHandler is the fast path for datagrams. OnPacket is called once per
// datagram received, on the loop's thread, with the sender's address (IPv4
// senders as IPv4 addresses, also on a dual-stack socket) and the payload.
// data is borrowed from the loop's receive buffers and valid only during
// the call. A datagram longer than the server's buffer size (ServeBuffers'
// size; default 4 KiB) is cut to it, as net's ReadFrom cuts it, and
// w.Truncated reports it. Replies go through w.WriteTo. Calls on one loop
// come one at a time; calls on different loops run in parallel. OnPacket
// must not block.
type PacketHandler interface {
	OnPacket(w *PacketWriter, from netip.AddrPort, data []byte)
}

// PacketHandlerFunc is a function as a PacketHandler.
type PacketHandlerFunc func(w *PacketWriter, from netip.AddrPort, data []byte)

// OnPacket calls f.
func (f PacketHandlerFunc) OnPacket(w *PacketWriter, from netip.AddrPort, data []byte) {
	f(w, from, data)
}

// PacketWriter is a loop's reply queue, handed to OnPacket; use it only in
// OnPacket, on the loop's thread.
type PacketWriter struct {
	p     *ploop
	trunc bool
}

// maxQueuedReplies bounds a loop's replies queued or in flight; past it
// WriteTo drops the reply with ErrOutputFull, as a full socket buffer would.
const maxQueuedReplies = 4096

// ErrPacketTooLarge is WriteTo's error for a payload over 65,507 bytes.
var ErrPacketTooLarge = errors.New("executor: datagram over 65507 bytes")

// WriteTo queues b (copied) as one datagram to to; the loop sends its
// turn's replies together once the turn's handlers have run. Errors of the
// send itself are counted in PacketStats.ReplyErrors, as UDP reports none
// to the sender.
func (w *PacketWriter) WriteTo(b []byte, to netip.AddrPort) error {
	p := w.p
	switch {
	case len(b) > 65507:
		return ErrPacketTooLarge
	case p.stopping:
		return ErrServerClosed
	case len(p.queue)+p.inflight >= maxQueuedReplies:
		p.st[pctrDropped]++
		return ErrOutputFull
	}
	var r *preply
	if n := len(p.free); n > 0 {
		r = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		r = p.newReply()
	}
	r.buf = append(r.buf[:0], b...)
	r.to = to
	p.queue = append(p.queue, r)
	return nil
}

// Truncated reports whether the datagram being handled was longer than the
// buffer and has been cut (MSG_TRUNC).
func (w *PacketWriter) Truncated() bool { return w.trunc }

// Loop returns the index of the loop running the handler (0 to loops-1).
func (w *PacketWriter) Loop() int { return w.p.id }

// preply is a queued or in-flight reply.
type preply struct {
	buf   []byte
	to    netip.AddrPort
	psend // the backend's send state (its msghdr, on io_uring)
}

// PacketServer is a running ServePacket.
type PacketServer struct {
	e       *Executor
	h       PacketHandler
	cfg     serveConfig
	addr    net.Addr
	loops   []*ploop
	backend Backend
	reason  string

	closeOnce sync.Once
	done      chan struct{}
	goConn    *net.UDPConn // Go backend: the one socket the loops read
}

// PacketStats are a PacketServer's counters, summed over its loops (each
// loop publishes its own once a turn).
type PacketStats struct {
	Backend       Backend `json:"backend"`
	BackendReason string  `json:"backend_reason,omitempty"`
	Loops         int     `json:"loops"`
	Packets       uint64  `json:"packets"`      // datagrams handled
	Bytes         uint64  `json:"bytes"`        // their payload bytes as handed to OnPacket
	Truncated     uint64  `json:"truncated"`    // datagrams cut to the buffer size
	Replies       uint64  `json:"replies"`      // replies sent
	ReplyErrors   uint64  `json:"reply_errors"` // replies the kernel refused
	Dropped       uint64  `json:"dropped"`      // replies refused by WriteTo (queue full)
	NoBufs        uint64  `json:"no_bufs"`      // receives stopped for want of buffers (io_uring)
	RecvErrors    uint64  `json:"recv_errors"`  // receives that failed (and were started again)
	Panics        uint64  `json:"panics"`       // OnPacket calls that panicked
	Turns         uint64  `json:"turns"`        // loop turns
}

const (
	pctrPackets = iota
	pctrBytes
	pctrTrunc
	pctrReplies
	pctrReplyErrs
	pctrDropped
	pctrNoBufs
	pctrRecvErrs
	pctrPanics
	pctrTurns
	pctrN
)

// ploop is one loop of a PacketServer.
type ploop struct {
	s  *PacketServer
	id int
	h  PacketHandler
	w  PacketWriter

	queue    []*preply // replies queued this turn
	free     []*preply
	inflight int
	stopping bool

	st  [pctrN]uint64        // the loop's own counters
	pub [pctrN]atomic.Uint64 // published once a turn

	stopReq atomic.Bool
	goid    atomic.Uint64
	exited  chan struct{}

	pring // io_uring (handler_udp_uring.go)
	pgo   // Go backend (handler_udp_go.go)
}

// ServePacket listens on network ("udp", "udp4" or "udp6") and address and
// runs h for every datagram on the event-driven fast path, on loops as
// Serve's (ServeLoops, ServeBuffers, ServeRingEntries, ServeKeepP,
// ServeSharePort apply; the rest are Serve's own). On io_uring each loop has
// its own SO_REUSEPORT socket on the address, one multishot RECVMSG into
// its buffer ring (Linux 6.0), and sends its replies with a SENDMSG each,
// submitted with the turn's one io_uring_enter. Buffers hold ServeBuffers'
// size of payload each (default 4 KiB x 512): ServeBuffers(65507, n) takes
// every datagram whole. An address in use fails with EADDRINUSE, as with
// net.ListenPacket. On the Go backend a goroutine per loop reads one
// net.UDPConn and feeds its loop; the handler sees the same API.
//
// The server stops with Close, or when the Executor closes.
func (e *Executor) ServePacket(network, address string, h PacketHandler, opts ...ServeOption) (*PacketServer, error) {
	cfg, err := newServeConfig(NopHandler{}, opts, e.logger)
	if err == nil && h == nil {
		err = errors.New("executor: ServePacket with a nil PacketHandler")
	}
	if err != nil {
		return nil, listenError(network, address, err)
	}
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, listenOpError(network, nil, net.UnknownNetworkError(network))
	}
	if cfg.bufSize == 0 {
		cfg.bufSize, cfg.bufCount = 4<<10, 512
	}
	if e.backend == BackendGo {
		return e.servePacketGo(network, address, h, cfg, e.reason)
	}
	return e.servePacketRing(network, address, h, cfg)
}

// Addr returns the address the server listens on (a *net.UDPAddr, with the
// port the kernel chose, if it was 0).
func (s *PacketServer) Addr() net.Addr { return s.addr }

// Done is closed once the server has stopped.
func (s *PacketServer) Done() <-chan struct{} { return s.done }

// Close stops the server: its sockets close, queued replies are dropped,
// every operation is cancelled and reaped. It waits for all that unless it
// is called from a handler. Idempotent; safe from any goroutine.
func (s *PacketServer) Close() error {
	s.closeOnce.Do(func() {
		if s.goConn != nil {
			s.goConn.Close()
		}
		for _, p := range s.loops {
			p.stop()
		}
		go func() {
			for _, p := range s.loops {
				<-p.exited
			}
			close(s.done)
		}()
	})
	self := currentGoroutine()
	for _, p := range s.loops {
		if p.goid.Load() == self {
			return nil
		}
	}
	<-s.done
	return nil
}

// Stats returns the server's counters as its loops last published them.
func (s *PacketServer) Stats() PacketStats {
	st := PacketStats{Backend: s.backend, BackendReason: s.reason, Loops: len(s.loops)}
	for _, p := range s.loops {
		st.Packets += p.pub[pctrPackets].Load()
		st.Bytes += p.pub[pctrBytes].Load()
		st.Truncated += p.pub[pctrTrunc].Load()
		st.Replies += p.pub[pctrReplies].Load()
		st.ReplyErrors += p.pub[pctrReplyErrs].Load()
		st.Dropped += p.pub[pctrDropped].Load()
		st.NoBufs += p.pub[pctrNoBufs].Load()
		st.RecvErrors += p.pub[pctrRecvErrs].Load()
		st.Panics += p.pub[pctrPanics].Load()
		st.Turns += p.pub[pctrTurns].Load()
	}
	return st
}

// watch makes the server a task of its executor, so that Executor.Close
// stops it and waits for it.
func (s *PacketServer) watch() (*Task, error) {
	return s.e.Spawn(func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
		return nil
	})
}

func newPloop(s *PacketServer, id int) *ploop {
	p := &ploop{s: s, id: id, h: s.h, exited: make(chan struct{})}
	p.w.p = p
	return p
}

// handle runs the handler for one datagram; a panic is logged and counted,
// and the loop goes on.
func (p *ploop) handle(from netip.AddrPort, data []byte, trunc bool) {
	p.st[pctrPackets]++
	p.st[pctrBytes] += uint64(len(data))
	if trunc {
		p.st[pctrTrunc]++
	}
	p.w.trunc = trunc
	defer func() {
		if v := recover(); v != nil {
			p.st[pctrPanics]++
			p.s.cfg.logger.Error("kasync: packet handler panicked", "loop", p.id, "from", from.String(),
				"panic", v, "stack", string(debug.Stack()))
		}
	}()
	p.h.OnPacket(&p.w, from, data)
}

// sent ends a reply's send: counted, and back to the free list.
func (p *ploop) sent(r *preply, err bool) {
	p.inflight--
	if err {
		p.st[pctrReplyErrs]++
	} else {
		p.st[pctrReplies]++
	}
	p.free = append(p.free, r)
}

// dropQueue drops the replies not yet sent (stopping).
func (p *ploop) dropQueue() {
	p.free = append(p.free, p.queue...)
	clear(p.queue)
	p.queue = p.queue[:0]
}

// publish makes the loop's counters readable by Stats.
func (p *ploop) publish() {
	for i := range p.st {
		p.pub[i].Store(p.st[i])
	}
}

// unmapAddrPort is ap with an IPv4-mapped address as IPv4.
func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

func (p *ploop) newReply() *preply {
	r := &preply{}
	p.initSend(r)
	return r
}

// stop asks the loop to stop (from any goroutine).
func (p *ploop) stop() {
	p.stopReq.Store(true)
	p.wakeStop()
}
