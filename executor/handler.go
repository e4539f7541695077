package executor

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// Handler is the event-driven fast path (kasync's SkBuff filters): its
// methods run on a loop's own OS thread, inline with the loop's completions,
// so a message costs no goroutine switch. Every connection belongs to one
// loop; all calls for it come from that loop's thread, one at a time. Calls
// for connections of different loops run in parallel, so state shared
// between connections must be safe for concurrent use.
//
// A handler must not block: while it runs, its loop does nothing else.
// Blocking work goes to an ordinary goroutine, which answers through
// HConn.AsyncWrite or HConn.Do.
type Handler interface {
	// OnOpen is called once for a new connection, before any OnData.
	OnOpen(c *HConn)
	// OnData is called with bytes received on c. data is borrowed from the
	// loop's receive buffers and valid only during the call; keep a copy of
	// what must outlive it. OnData returns how many bytes it consumed; the
	// rest is kept and passed again, followed by newer bytes, at the next
	// call.
	OnData(c *HConn, data []byte) (consumed int)
	// OnClose is called once when c is closed: err is nil after c.Close,
	// io.EOF if the peer closed, ErrServerClosed when the server stops, a
	// *HandlerPanic if a handler call panicked, or the error that broke the
	// connection.
	OnClose(c *HConn, err error)
}

// Ticker is an optional interface of a Handler: OnTick is called on every
// loop's thread right after the loop starts and then again after each
// returned delay (a delay <= 0, or a panic, stops the loop's ticks). It is
// the place for periodic work such as refreshing a cached Date header.
type Ticker interface {
	OnTick(now time.Time) (next time.Duration)
}

// HandlerPanic is the error a connection is closed with when one of its
// handler calls panicked. The loop goes on with its other connections.
type HandlerPanic struct {
	Value any
	Stack []byte
}

func (p *HandlerPanic) Error() string { return fmt.Sprintf("executor: handler panicked: %v", p.Value) }

var (
	// ErrServerClosed is the OnClose error of connections closed because
	// their Server (or its Executor) closed.
	ErrServerClosed = errors.New("executor: server closed")
	// ErrInputLimit is the OnClose error of a connection whose unconsumed
	// input grew past the server's input limit (ServeInputLimit).
	ErrInputLimit = errors.New("executor: unconsumed input over the limit")
	// ErrOutputFull is returned by AsyncWrite while the connection's queued
	// output is over the server's output limit (ServeOutputLimit).
	ErrOutputFull = errors.New("executor: connection output over the limit")
)

// RecvMode chooses how a server's loops receive into their buffer rings.
type RecvMode int

const (
	// RecvAuto picks the best mode the kernel has (the default).
	RecvAuto RecvMode = iota
	// RecvPlain: one buffer per receive completion.
	RecvPlain
	// RecvBundle: one completion may fill several buffers (Linux 6.10),
	// handed to OnData as one slice.
	RecvBundle
	// RecvIncremental: the kernel packs several receives into one buffer
	// (Linux 6.12), so small messages from many connections share a buffer.
	RecvIncremental
)

// recvModeNames are the modes' names, as String and MarshalText give them.
var recvModeNames = [...]string{RecvAuto: "auto", RecvPlain: "plain", RecvBundle: "bundle", RecvIncremental: "incremental"}

func (m RecvMode) String() string {
	if m < 0 || int(m) >= len(recvModeNames) {
		return fmt.Sprintf("RecvMode(%d)", int(m))
	}
	return recvModeNames[m]
}

// MarshalText returns the mode's name ("auto", "plain", "bundle" or
// "incremental"), so that ServerStats marshal to JSON with it.
func (m RecvMode) MarshalText() ([]byte, error) {
	if m < 0 || int(m) >= len(recvModeNames) {
		return nil, fmt.Errorf("executor: no such RecvMode %d", int(m))
	}
	return []byte(recvModeNames[m]), nil
}

// UnmarshalText sets m to the mode named by text, as MarshalText names it.
func (m *RecvMode) UnmarshalText(text []byte) error {
	for i, name := range recvModeNames {
		if string(text) == name {
			*m = RecvMode(i)
			return nil
		}
	}
	return fmt.Errorf("executor: no RecvMode named %q", text)
}

// ServeOption configures Serve.
type ServeOption func(*serveConfig)

type serveConfig struct {
	loops       int
	bufSize     int
	bufCount    int
	recvMode    RecvMode
	outLimit    int
	inLimit     int
	zcThreshold int
	direct      bool
	keepP       bool
	linger      time.Duration
	entries     uint32
	onPanic     func(c *HConn, p *HandlerPanic)
	logf        func(format string, args ...any)
	ringOpts    []ring.Option
}

// ServeLoops sets the number of loops, each on its own thread with its own
// ring and listening socket (default GOMAXPROCS).
func ServeLoops(n int) ServeOption { return func(c *serveConfig) { c.loops = n } }

// ServeBuffers sets each loop's receive buffers: count buffers (a power of
// two) of size bytes (defaults: 64 KiB x 64 in incremental mode, 4 KiB x 512
// otherwise). On the Go fallback, size is each connection's read buffer
// (default 16 KiB).
func ServeBuffers(size, count int) ServeOption {
	return func(c *serveConfig) { c.bufSize, c.bufCount = size, count }
}

// ServeRecvMode forces a receive mode; a mode the kernel lacks falls back
// to RecvPlain.
func ServeRecvMode(m RecvMode) ServeOption { return func(c *serveConfig) { c.recvMode = m } }

// ServeOutputLimit bounds a connection's queued output (default 1 MiB).
// Above it the connection stops receiving until the output has drained to
// half the limit, so a slow reader cannot make the server's memory grow
// without bound; AsyncWrite fails with ErrOutputFull meanwhile.
func ServeOutputLimit(n int) ServeOption { return func(c *serveConfig) { c.outLimit = n } }

// ServeInputLimit bounds the input a handler leaves unconsumed (default
// 4 MiB); a connection over it is closed with ErrInputLimit.
func ServeInputLimit(n int) ServeOption { return func(c *serveConfig) { c.inLimit = n } }

// ServeZeroCopyAbove sends a connection's output with zero-copy SEND_ZC when
// one send carries at least n bytes. Off by default: over loopback SEND_ZC
// measured slower than copying (0.77x at 64 KiB, 0.90x at 256 KiB echo) and
// no better below; try it on real NICs with large responses. n <= 0 turns
// it off.
func ServeZeroCopyAbove(n int) ServeOption { return func(c *serveConfig) { c.zcThreshold = n } }

// ServeDirectFiles accepts connections straight into each ring's registered
// file table: no descriptor in the process, no file lookup per operation.
// RemoteAddr and LocalAddr then return nil. TCP only.
func ServeDirectFiles(on bool) ServeOption { return func(c *serveConfig) { c.direct = on } }

// ServeKeepP makes each loop keep its P (the Go scheduler's slot for
// running goroutines) while it waits in io_uring_enter. Go normally hands the
// P of a thread blocked in a system call to another thread and takes it back
// when the call returns; a loop that waits once per turn pays that hand-off
// (and the sysmon wake-ups behind it) every turn, measured at about a fifth
// of a one-core echo server's CPU with GOMAXPROCS=1. With it, the loop lends
// its P to other goroutines itself: it waits in the kernel for at most a
// millisecond and yields then, and every 64 turns under load. Use it when the process exists to serve and GOMAXPROCS
// is not above the number of loops; with spare Ps the hand-off does not
// happen anyway.
func ServeKeepP(on bool) ServeOption { return func(c *serveConfig) { c.keepP = on } }

// ServeLinger bounds how long a closed connection keeps trying to send its
// queued output before it is dropped (default 5s; 0 drops it at once,
// negative is refused).
func ServeLinger(d time.Duration) ServeOption { return func(c *serveConfig) { c.linger = d } }

// ServeRingEntries sets each loop's SQ size (default 4096; the CQ is 8x),
// from 4 to 32768.
func ServeRingEntries(n uint32) ServeOption { return func(c *serveConfig) { c.entries = n } }

// ServeOnPanic sets what is told about a handler call that panicked (default:
// a log line with the stack). The connection is closed either way.
func ServeOnPanic(f func(c *HConn, p *HandlerPanic)) ServeOption {
	return func(c *serveConfig) { c.onPanic = f }
}

// ServeLogf sets where the loops report trouble (default, or nil:
// log.Printf).
func ServeLogf(f func(format string, args ...any)) ServeOption {
	return func(c *serveConfig) { c.logf = f }
}

// serveRingOptions adds ring options to every loop's ring (tests: hide features).
func serveRingOptions(opts ...ring.Option) ServeOption {
	return func(c *serveConfig) { c.ringOpts = append(c.ringOpts, opts...) }
}

// Server is a running Serve: its loops, their listening sockets and
// connections.
type Server struct {
	e       *Executor
	h       Handler
	cfg     serveConfig
	addr    net.Addr
	loops   []*hloop
	unlink  string // Unix socket path to remove on Close
	handoff bool   // Unix: loop 0 accepts and hands connections round robin

	closeOnce sync.Once
	done      chan struct{} // closed once every loop has exited

	goLn       net.Listener  // Go fallback: the listener
	acceptDone chan struct{} // Go fallback: closed when its accepting ends
}

// Serve listens on network ("tcp", "tcp4", "tcp6" or "unix") and address and
// runs h for every connection on the event-driven fast path. Each loop is a
// goroutine locked to its OS thread with its own ring (SINGLE_ISSUER,
// DEFER_TASKRUN) and, for TCP, its own SO_REUSEPORT listening socket; one
// io_uring_enter per turn submits everything the handlers queued and waits
// for completions. The server stops with Close or Shutdown, or when the
// Executor closes.
//
// Where io_uring is refused (Backend BackendGo), Serve runs the same Handler
// on Go's net, with the same guarantees: a goroutine per loop runs the
// handler, and a reader and a writer goroutine per connection do the I/O.
func (e *Executor) Serve(network, address string, h Handler, opts ...ServeOption) (*Server, error) {
	cfg := serveConfig{
		loops:    runtime.GOMAXPROCS(0),
		outLimit: 1 << 20,
		inLimit:  4 << 20,
		linger:   5 * time.Second,
		entries:  4096,
		logf:     log.Printf,
	}
	for _, o := range opts {
		if o == nil {
			return nil, listenError(network, address, errors.New("executor: nil ServeOption"))
		}
		o(&cfg)
	}
	if err := cfg.check(h); err != nil {
		return nil, listenError(network, address, err)
	}
	if cfg.logf == nil {
		cfg.logf = log.Printf
	}
	if cfg.onPanic == nil {
		logf := cfg.logf
		cfg.onPanic = func(c *HConn, p *HandlerPanic) {
			logf("kasync: handler panicked, connection closed: %v\n%s", p.Value, p.Stack)
		}
	}
	if e.backend == BackendGo {
		return e.serveGo(network, address, h, cfg)
	}
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
	var fds []int
	for i := 0; i < nsock; i++ {
		fd, err := bindSocket(family, k, sa, v6only, nsock > 1)
		if err != nil {
			closeAll(fds)
			return nil, listenError(network, address, err)
		}
		fds = append(fds, fd)
		if i == 0 {
			if sa, err = unix.Getsockname(fd); err != nil {
				closeAll(fds)
				return nil, listenError(network, address, err)
			}
		}
	}
	s := &Server{e: e, h: h, cfg: cfg, addr: netAddrOf(network, sa), done: make(chan struct{})}
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
	inits := make(chan error, cfg.loops)
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
	for _, l := range s.loops {
		go l.run(inits)
	}
	var errs []error
	for range s.loops {
		if err := <-inits; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		s.Close()
		watch.Wait()
		return nil, listenError(network, address, errors.Join(errs...))
	}
	return s, nil
}

// Ring sizes a loop works with: flush needs room for 4 SQEs at once
// (sqeSpace(4)), and the kernel takes no more than ring.MaxEntries.
const (
	minServeEntries = 4
	maxServeEntries = ring.MaxEntries
)

// check rejects what Serve cannot run with, so that a bad option fails at
// the call rather than as a server that never answers.
func (cfg *serveConfig) check(h Handler) error {
	switch {
	case h == nil:
		return errors.New("executor: Serve with a nil Handler")
	case cfg.loops < 1 || cfg.outLimit < 1 || cfg.inLimit < 1:
		return fmt.Errorf("executor: bad ServeOption (loops %d, output limit %d, input limit %d)", cfg.loops, cfg.outLimit, cfg.inLimit)
	case (cfg.bufCount != 0 || cfg.bufSize != 0) && (cfg.bufSize <= 0 || cfg.bufCount <= 0 || cfg.bufCount&(cfg.bufCount-1) != 0 || cfg.bufCount >= 1<<15):
		return fmt.Errorf("executor: %d buffers of %d bytes: want a power of two below 32768 of at least 1 byte", cfg.bufCount, cfg.bufSize)
	case cfg.entries < minServeEntries || cfg.entries > maxServeEntries:
		return fmt.Errorf("executor: ServeRingEntries(%d): want %d to %d", cfg.entries, minServeEntries, maxServeEntries)
	case cfg.recvMode < RecvAuto || cfg.recvMode > RecvIncremental:
		return fmt.Errorf("executor: ServeRecvMode(%d): no such mode", int(cfg.recvMode))
	case cfg.linger < 0:
		return fmt.Errorf("executor: ServeLinger(%v): negative", cfg.linger)
	}
	return nil
}

// Addr returns the address the server listens on (with the port the kernel
// chose, if it was 0).
func (s *Server) Addr() net.Addr { return s.addr }

// Close stops the server: its listening sockets close, every connection is
// closed (queued output is dropped; OnClose gets ErrServerClosed), every
// operation is cancelled and reaped, and the loops' rings are closed. It
// waits for all that unless it is called from a handler, where it only
// starts it (Done tells when it is over). Idempotent; safe from any
// goroutine.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.goLn != nil {
			s.goLn.Close()
		}
		for _, l := range s.loops {
			l.stop()
		}
		go func() {
			if s.acceptDone != nil {
				<-s.acceptDone
			}
			for _, l := range s.loops {
				<-l.exited
			}
			s.removeSocketFile()
			close(s.done)
		}()
	})
	if s.ownLoop() == nil {
		<-s.done
	}
	return nil
}

// ownLoop returns the loop whose thread calls it, nil for other goroutines.
func (s *Server) ownLoop() *hloop {
	self := currentGoroutine()
	for _, l := range s.loops {
		if l.goid.Load() == self {
			return l
		}
	}
	return nil
}

// errShutdownFromHandler: Shutdown waits for handlers, so not from one.
var errShutdownFromHandler = errors.New("executor: Server.Shutdown called from a handler; use Close")

// Shutdown stops the server gracefully: it stops accepting at once, then
// waits for the open connections to close (their handlers or peers closing
// them) until ctx is done, and then Closes the server, which ends the rest.
// It returns ctx's error if connections were still open then.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ownLoop() != nil {
		return errShutdownFromHandler
	}
	if s.goLn != nil {
		s.goLn.Close()
	}
	for _, l := range s.loops {
		l.post(hmsg{kind: hmsgNoAccept}, nil)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
	for s.Stats().Conns > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-s.done:
		case <-tick.C:
			continue
		}
		break
	}
	s.Close()
	return err
}

func (s *Server) removeSocketFile() {
	if s.unlink != "" {
		unix.Unlink(s.unlink)
	}
}

// Done is closed once the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// ServerStats counts what a Server's loops did.
type ServerStats struct {
	Loops    int
	RecvMode RecvMode // what the loops use (the first loop's, if they differ)
	Conns    int      // open now
	Accepted uint64
	Turns    uint64 // loop turns, each with one io_uring_enter that waits
	Enters   uint64 // all io_uring_enter calls (more than Turns if the SQ filled)
	CQEs     uint64
	BytesIn  uint64
	BytesOut uint64
	Sends    uint64 // SEND operations (at most one per connection per turn)
	ZCSends  uint64 // of which zero-copy
	NoBufs   uint64 // receives that found the buffer ring empty and were re-armed
	Pauses   uint64 // times a connection stopped receiving for output over the limit
	Panics   uint64
	Stale    uint64 // CQEs for a slot's old generation, dropped
}

// Stats returns the server's counters. Each loop publishes them when asked,
// so that its turns pay nothing for them.
//
// From a handler, the other loops' counters are as of their last publication:
// a loop never waits for another.
func (s *Server) Stats() ServerStats {
	if own := s.ownLoop(); own != nil {
		own.publish()
	} else {
		for _, l := range s.loops {
			ch := make(chan struct{})
			if l.post(hmsg{kind: hmsgStats, ch: ch}, nil) {
				<-ch
			}
		}
	}
	st := ServerStats{Loops: len(s.loops)}
	for i, l := range s.loops {
		p := &l.pub
		if i == 0 {
			st.RecvMode = RecvMode(p.mode.Load())
		}
		st.Conns += int(p.conns.Load())
		st.Accepted += p.accepted.Load()
		st.Turns += p.turns.Load()
		st.Enters += p.enters.Load()
		st.CQEs += p.cqes.Load()
		st.BytesIn += p.bytesIn.Load()
		st.BytesOut += p.bytesOut.Load()
		st.Sends += p.sends.Load()
		st.ZCSends += p.zcSends.Load()
		st.NoBufs += p.noBufs.Load()
		st.Pauses += p.pauses.Load()
		st.Panics += p.panics.Load()
		st.Stale += p.stale.Load()
	}
	return st
}

// hstats are a loop's counters, kept plainly on its thread.
type hstats struct {
	accepted, turns, cqes, bytesIn, bytesOut, sends, zcSends, noBufs, pauses, panics uint64
}

// hpub are a loop's counters as published once per turn, for Stats.
type hpub struct {
	mode, conns                                                                                     atomic.Int64
	accepted, turns, enters, cqes, bytesIn, bytesOut, sends, zcSends, noBufs, pauses, panics, stale atomic.Uint64
}

// watch makes the server a task of its executor, so that Executor.Close
// stops it and waits for it; the task ends when the server is done.
func (s *Server) watch() (*Task, error) {
	return s.e.Spawn(func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
		return nil
	})
}
