package executor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned for work started on, or cut short by, a closed Executor.
var ErrClosed = errors.New("executor: closed")

// Backend names what carries an Executor's I/O.
type Backend string

const (
	// BackendIOURing: io_uring rings.
	BackendIOURing Backend = "io_uring"
	// BackendGo: Go's own runtime (net, os, time), because io_uring was refused.
	BackendGo Backend = "go"
)

// Option configures New.
type Option func(*config)

type config struct {
	loops      int
	entries    uint32
	strict     bool
	ringConfig // io_uring's own options (Linux)
	logger     *slog.Logger
	goOnly     bool // tests: the Go backend, as where io_uring is refused
}

// WithLoops sets the number of rings (default GOMAXPROCS).
func WithLoops(n int) Option { return func(c *config) { c.loops = n } }

// WithEntries sets each ring's SQ size (default 1024; the CQ is 4x that).
func WithEntries(n uint32) Option { return func(c *config) { c.entries = n } }

// Strict makes New fail where io_uring is refused, instead of falling back
// to Go's runtime.
func WithStrict() Option { return func(c *config) { c.strict = true } }

// WithLogger sets where the Executor and its Servers log (default, or nil:
// slog.Default()). They log little, with structured attributes (loop, op,
// errno, remote, cause): the fallback to the Go backend as one warning,
// accept errors at most once a second per loop, a loop that stops on an
// error, and a handler's panic (unless ServeOnPanic says otherwise).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Executor runs tasks and drives their I/O on io_uring rings. Close stops
// everything it runs. All methods are safe for concurrent use.
type Executor struct {
	loops   []*loop
	backend Backend
	reason  string // why this backend, or why its rings are smaller (Stats.BackendReason)
	logger  *slog.Logger
	next    atomic.Uint32 // round-robin loop choice

	mu        sync.Mutex
	tasks     map[*Task]struct{}
	owned     map[owned]struct{} // closed by Close (goclose.go)
	closing   chan struct{}
	closed    chan struct{}
	closeErr  error
	closeOnce sync.Once

	strict bool // WithStrict: servers fail where io_uring is refused
}

// New starts an executor. Where the kernel refuses io_uring (seccomp,
// kernel.io_uring_disabled, memlock) it logs one warning and returns an
// executor whose backend is Go's own runtime, unless Strict is given: then
// the error wraps ring.ErrUnavailable.
func New(opts ...Option) (*Executor, error) {
	c := config{loops: runtime.GOMAXPROCS(0), entries: 1024}
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.loops < 1 {
		return nil, fmt.Errorf("executor: %d loops: need at least one", c.loops)
	}
	if c.entries < 1 || c.entries > maxEntries {
		return nil, fmt.Errorf("executor: WithEntries(%d): out of range 1..%d (IORING_MAX_ENTRIES; the CQ is 4x entries)", c.entries, maxEntries)
	}
	e := &Executor{
		backend: BackendIOURing,
		logger:  c.logger,
		tasks:   make(map[*Task]struct{}),
		owned:   make(map[owned]struct{}),
		closing: make(chan struct{}),
		closed:  make(chan struct{}),
	}
	if c.goOnly {
		return newGoBackend(c.logger, "the Go backend was asked for (a test)"), nil
	}
	return e.startRings(c)
}

// newGoBackend returns an Executor on Go's runtime (BackendGo), for reason.
func newGoBackend(logger *slog.Logger, reason string) *Executor {
	return &Executor{backend: BackendGo, reason: reason, logger: logger, tasks: make(map[*Task]struct{}), owned: make(map[owned]struct{}),
		closing: make(chan struct{}), closed: make(chan struct{})}
}

// withGoBackend makes New return the Go backend without trying io_uring,
// so that one test body runs on both backends.
func withGoBackend() Option { return func(c *config) { c.goOnly = true } }

// Backend says whether I/O runs on io_uring or on Go's runtime (fallback).
func (e *Executor) Backend() Backend { return e.backend }

// loop picks a loop for new work, round-robin; nil in fallback mode.
func (e *Executor) loop() *loop {
	if len(e.loops) == 0 {
		return nil
	}
	return e.loops[int(e.next.Add(1))%len(e.loops)]
}

// Close stops the executor, kasync's AutoStopHandle: new spawns and
// operations fail with ErrClosed, every task's context is cancelled, every
// operation in flight is cancelled and its completion reaped, every task is
// waited for, descriptors still open on it (conns, listeners, files) are
// closed, and the rings are closed. It is idempotent and safe from any
// goroutine; called from inside a task, it does not wait for that task.
func (e *Executor) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		close(e.closing)
		tasks := make([]*Task, 0, len(e.tasks))
		for t := range e.tasks {
			tasks = append(tasks, t)
		}
		e.mu.Unlock()
		for _, t := range tasks {
			t.cancel(ErrClosed)
		}
		for _, l := range e.loops {
			l.beginClose()
		}
		// Listeners (and, on the Go backend, conns, packet conns and
		// files): their blocked calls return, and tasks waiting on them.
		e.closeOwned()
		self := currentGoroutine()
		for _, t := range tasks {
			if t.goid.Load() != self {
				<-t.done
			}
		}
		for _, l := range e.loops {
			l.closeFDs()
		}
		var errs []error
		for _, l := range e.loops {
			errs = append(errs, l.finish())
		}
		e.closeErr = errors.Join(errs...)
		close(e.closed)
	})
	<-e.closed
	return e.closeErr
}
