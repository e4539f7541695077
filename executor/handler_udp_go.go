package executor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// ServePacket on Go's runtime (BackendGo): one net.UDPConn, a reader
// goroutine per loop reading it into the loop's buffer, and the loop
// goroutine running the handler on each datagram and writing its replies
// once the handler has returned. The reader reads one byte more than the
// buffer size, so that a longer datagram is reported truncated as on
// io_uring.

// pgo is a loop's Go backend state.
type pgo struct {
	gconn *net.UDPConn
	gbuf  []byte // the reader's buffer, lent to OnPacket
	gin   chan gpacket
	gack  chan struct{} // the loop hands the buffer back to the reader
}

// gpacket is a reader's report: a datagram's length and sender, or n < 0
// for a failed read.
type gpacket struct {
	n    int
	from netip.AddrPort
}

func (e *Executor) servePacketGo(network, address string, h PacketHandler, cfg serveConfig, why string) (*PacketServer, error) {
	lc := net.ListenConfig{Control: reusePortControl(cfg.sharePort)}
	pc, err := lc.ListenPacket(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	uc := pc.(*net.UDPConn)
	s := &PacketServer{e: e, h: h, cfg: cfg, addr: uc.LocalAddr(), done: make(chan struct{}), goConn: uc,
		backend: BackendGo, reason: why}
	if _, err := s.watch(); err != nil {
		uc.Close()
		return nil, listenError(network, address, err)
	}
	for i := 0; i < cfg.loops; i++ {
		p := newPloop(s, i)
		p.gconn = uc
		p.gbuf = make([]byte, cfg.bufSize+1)
		p.gin = make(chan gpacket)
		p.gack = make(chan struct{}, 1)
		s.loops = append(s.loops, p)
	}
	for _, p := range s.loops {
		go p.gread()
		go p.grun()
	}
	return s, nil
}

// gread is a loop's reader: a datagram at a time, until the socket closes.
func (p *ploop) gread() {
	defer close(p.gin)
	for {
		n, from, err := p.gconn.ReadFromUDPAddrPort(p.gbuf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.gin <- gpacket{n: -1} // an ICMP error and the like: counted, and read on
			time.Sleep(time.Millisecond)
			continue
		}
		p.gin <- gpacket{n: n, from: from}
		<-p.gack
	}
}

// grun is a loop goroutine of the Go backend.
func (p *ploop) grun() {
	labelLoop("serve-packet-go", p.id)
	p.goid.Store(currentGoroutine())
	defer close(p.exited)
	size := p.s.cfg.bufSize
	for pk := range p.gin {
		if pk.n < 0 {
			p.st[pctrRecvErrs]++
		} else {
			n, trunc := pk.n, pk.n > size
			if trunc {
				n = size
			}
			p.handle(unmapAddrPort(pk.from), p.gbuf[:n], trunc)
			p.gack <- struct{}{}
		}
		p.gflush()
		p.st[pctrTurns]++
		p.publish()
	}
	p.stopping = true
	p.dropQueue()
	p.publish()
}

// gflush writes the replies the handler queued.
func (p *ploop) gflush() {
	i := 0
	for ; i < len(p.queue) && !p.stopReq.Load(); i++ {
		r := p.queue[i]
		_, err := p.gconn.WriteToUDPAddrPort(r.buf, r.to)
		p.inflight++
		p.sent(r, err != nil)
	}
	p.free = append(p.free, p.queue[i:]...) // stopping: dropped
	clear(p.queue)
	p.queue = p.queue[:0]
}
