package executor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// Serve's options: what each one sets, its defaults, and the check that
// rejects a configuration Serve cannot run with.

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
	sharePort   bool
	linger      time.Duration
	readTO      time.Duration // ServeReadTimeout (handler_deadlines.go)
	writeTO     time.Duration // ServeWriteTimeout
	idleTO      time.Duration // ServeIdleTimeout
	entries     uint32
	onPanic     func(c *HConn, p *HandlerPanic)
	logger      *slog.Logger // the Executor's (WithLogger)
	ringConfig               // io_uring options (Linux)
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
func ServeDirectFiles() ServeOption { return func(c *serveConfig) { c.direct = true } }

// ServeKeepP makes each loop keep its P (the Go scheduler's slot for
// running goroutines) while it waits in io_uring_enter. Go normally hands the
// P of a thread blocked in a system call to another thread and takes it back
// when the call returns; a loop that waits once per turn pays that hand-off
// (and the sysmon wake-ups behind it) every turn, measured at about a fifth
// of a one-core echo server's CPU with GOMAXPROCS=1. With it, a busy loop
// lends its P to other goroutines itself: its raw waits in the kernel last
// at most a millisecond, and it yields then and every 64 turns. Once such a
// wait runs out with nothing done, the loop is idle and waits as an
// ordinary blocking system call again, handing its P back, until the next
// completion: an idle server costs no CPU and makes no timed wake-ups. Use
// it when the process exists to serve and GOMAXPROCS is not above the
// number of loops; with spare Ps the hand-off does not happen anyway.
func ServeKeepP() ServeOption { return func(c *serveConfig) { c.keepP = true } }

// ServeSharePort lets the server's listening sockets join the SO_REUSEPORT
// sockets of the same user already bound to its address, in this process or
// another, the kernel spreading connections over all of them: two copies of
// a server, or a restart that starts the new one before it stops the old.
// Without it, Serve on an address in use fails with EADDRINUSE, as
// net.Listen does. TCP only; on the Go backend it sets SO_REUSEPORT on Go's
// listener.
func ServeSharePort() ServeOption { return func(c *serveConfig) { c.sharePort = true } }

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

// Ring sizes a loop works with: flush needs room for 4 SQEs at once
// (sqeSpace(4)), and the kernel takes no more than ring.MaxEntries.
const (
	minServeEntries = 4
	maxServeEntries = maxEntries
)

// newServeConfig is the defaults with opts applied, checked.
func newServeConfig(h Handler, opts []ServeOption, logger *slog.Logger) (serveConfig, error) {
	cfg := serveConfig{
		loops:    runtime.GOMAXPROCS(0),
		outLimit: 1 << 20,
		inLimit:  4 << 20,
		linger:   5 * time.Second,
		entries:  4096,
		logger:   logger,
	}
	for _, o := range opts {
		if o == nil {
			return cfg, errors.New("executor: nil ServeOption")
		}
		o(&cfg)
	}
	if err := cfg.check(h); err != nil {
		return cfg, err
	}
	if cfg.onPanic == nil {
		log := cfg.logger
		cfg.onPanic = func(c *HConn, p *HandlerPanic) {
			log.Error("kasync: handler panicked, connection closed",
				"loop", c.l.id, "remote", logAddr(c.RemoteAddr()), "panic", p.Value, "stack", string(p.Stack))
		}
	}
	return cfg, nil
}

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
	case cfg.readTO < 0 || cfg.writeTO < 0 || cfg.idleTO < 0:
		return fmt.Errorf("executor: negative timeout (read %v, write %v, idle %v)", cfg.readTO, cfg.writeTO, cfg.idleTO)
	}
	return nil
}
