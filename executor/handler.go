package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
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
	// what must outlive it (Write copies; WriteNoCopy, on a connection of
	// the same loop, sends from the buffer itself, holding it until that
	// send ends). OnData returns how many bytes it consumed; the
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
// returned delay (a delay <= 0, or a panic, stops the loop's ticks); loop is
// the loop's index, as HConn.Loop gives it. It is the place for periodic
// work such as refreshing a cached Date header.
type Ticker interface {
	OnTick(loop int, now time.Time) (next time.Duration)
}

// Drainer is an optional interface of a Handler: OnDrain is called on c's
// loop once c's queued output, having gone over the server's output limit
// (receiving paused) or made AsyncWrite fail with ErrOutputFull, has
// drained to half the limit: the moment to write again.
type Drainer interface {
	OnDrain(c *HConn)
}

// ShutdownNotifier is an optional interface of a Handler: when Shutdown
// begins, OnShutdown is called once for every open connection, on its
// loop, so that idle ones can be closed at once (c.Close) instead of
// holding the Shutdown until its context ends.
type ShutdownNotifier interface {
	OnShutdown(c *HConn)
}

// NopHandler is a Handler that does nothing: embed it to implement only the
// methods that matter. Its OnData consumes (drops) everything.
type NopHandler struct{}

func (NopHandler) OnOpen(*HConn)                 {}
func (NopHandler) OnData(_ *HConn, b []byte) int { return len(b) }
func (NopHandler) OnClose(*HConn, error)         {}

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

	backend    Backend       // what this server runs on (ServerStats)
	reason     string        // why, or why its rings are smaller than asked
	acceptErrs atomic.Uint64 // Go fallback: failed accepts

	dialWG sync.WaitGroup // Dials resolving or dialing on a goroutine (handler_dial.go)
}

// Serve listens on network ("tcp", "tcp4", "tcp6" or "unix") and address and
// runs h for every connection on the event-driven fast path. Each loop is a
// goroutine locked to its OS thread with its own ring (SINGLE_ISSUER,
// DEFER_TASKRUN) and, for TCP, its own SO_REUSEPORT listening socket; one
// io_uring_enter per turn submits everything the handlers queued and waits
// for completions. The server stops with Close or Shutdown, or when the
// Executor closes.
//
// An address in use fails with EADDRINUSE in a *net.OpError, as with
// net.Listen, although the loops' sockets use SO_REUSEPORT: Serve checks
// first that no socket holds the address. To share it with other servers
// (another process, a restart that overlaps the old one), give
// ServeSharePort.
//
// Where io_uring is refused (Backend BackendGo), Serve runs the same Handler
// on Go's net, with the same guarantees: a goroutine per loop runs the
// handler, and a reader and a writer goroutine per connection do the I/O.
func (e *Executor) Serve(network, address string, h Handler, opts ...ServeOption) (*Server, error) {
	cfg, err := newServeConfig(h, opts, e.logger)
	if err != nil {
		return nil, listenError(network, address, err)
	}
	if e.backend == BackendGo {
		return e.serveGoBecause(network, address, h, cfg, e.reason)
	}
	return e.serveRing(network, address, h, cfg)
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
			s.dialWG.Wait()
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
		os.Remove(s.unlink)
	}
}

// Done is closed once the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

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
