// Package loadgen generates load against the benchmark servers on kasync's own
// io_uring binding (package ring), cheaply enough that the server, not the
// generator, is what gets measured.
//
// One goroutine, locked to its OS thread, drives one ring (SINGLE_ISSUER and
// DEFER_TASKRUN where the kernel has them) and every connection: each turn, a
// single io_uring_enter submits all the sends prepared since the last one and
// waits for at least one completion; the completions are then handled in a
// batch. Responses arrive through one multishot receive per connection into
// a ring of provided buffers, and the sockets are registered files, so a
// round trip costs one SQE. Each connection does ping-pong: one request, then
// exactly one response, checked, then the next request. Nothing is allocated
// per message, and the clock is read once per turn.
//
// Echo checks every echoed byte against what was sent; each message is filled
// with a pattern unique to its connection and round, so a server that flips,
// drops, repeats or crosses bytes is caught. HTTP sends keep-alive GET / and
// checks for status 200 and the body "Hello, World!".
//
// Two loads run loops of their own on the same driver (ownLoop): Bulk
// streams continuously on every connection and checks the echoed stream
// byte by byte against a counter pattern (bytes per second, not round
// trips); UDP keeps one datagram outstanding on each of its connected UDP
// sockets and sends one again when it goes unanswered.
package loadgen

import "time"

// Config says what load to generate.
type Config struct {
	Addr     string        // server address, IP:PORT
	Conns    int           // connections, each with one request in flight
	Size     int           // echo, UDP: bytes per message (default 64); Bulk: bytes per send (default 64 KiB)
	Warmup   time.Duration // load before the measured window (default 0)
	Duration time.Duration // the measured window (default 1s)

	// Plain turns the kernel-side optimizations off: single-shot receives
	// instead of multishot ones into a provided-buffer ring, no registered
	// files or ring fd. They are also skipped on kernels that lack them.
	Plain bool

	// Stall is how long the server may leave every connection without a
	// completion before the run fails as stuck (default 5s).
	Stall time.Duration

	// Rate, if positive, makes the load open-loop: this many round trips
	// per second over all connections, each connection sending its share
	// on a fixed schedule whatever the replies; latency is measured from
	// each request's scheduled time. Zero: closed loop, one request in
	// flight per connection, as fast as the server answers.
	Rate float64
	// Tick, if positive, batches the open loop's sends: each goes out at
	// the first multiple of Tick (from the start) at or after its time,
	// which is then its scheduled time, so that the generator wakes for
	// sends once per tick at most. Zero: each send at its own time.
	Tick time.Duration

	// Resend is how long a UDP datagram may go unanswered before it is
	// sent again (default 50ms; checked every Resend/10 or so).
	Resend time.Duration

	// OnWindow, if set, is called on the load thread right as the measured
	// window opens (true) and closes (false): the place to sample the server's
	// CPU time.
	OnWindow func(open bool)
}

// Result is what the measured window saw.
type Result struct {
	Requests uint64        // round trips completed
	Elapsed  time.Duration // length of the window
	Latency  *Histogram    // round-trip latency of each request
	CPU      time.Duration // CPU time (user+system) of the load thread
	Enters   uint64        // io_uring_enter calls

	// Completions is the CQEs handled in the window, for the loads whose
	// round trip is not two of them (Bulk, UDP); zero for the others.
	Completions uint64

	// Bulk only: bytes echoed back, and checked, in the window.
	Bytes uint64

	// UDP only: datagrams sent again after going unanswered for
	// Config.Resend (lost, or late), and echoes that came after their
	// round was done (the late ones, or duplicates), in the window.
	Resent, Late uint64

	// Open loop only (Config.Rate > 0).
	Offered     float64    // the rate asked for, round trips per second
	Scheduled   uint64     // requests due within the window
	Outstanding uint64     // requests due but not answered as the window closed
	SendLag     *Histogram // how long after its scheduled time the generator got to each request
}

// Achieved returns, for an open loop, the share of the requests due in the
// window that were answered in it: about 1 when the server kept up.
func (r Result) Achieved() float64 {
	if r.Scheduled == 0 {
		return 0
	}
	return float64(r.Requests) / float64(r.Scheduled)
}

// Throughput returns round trips per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// BytesPerSecond returns, for Bulk, the bytes echoed back per second.
func (r Result) BytesPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Elapsed.Seconds()
}

// CPUShare returns the load thread's CPU time as a fraction of one core.
func (r Result) CPUShare() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return r.CPU.Seconds() / r.Elapsed.Seconds()
}

// PerEnter returns the average number of completions handled per io_uring_enter.
func (r Result) PerEnter() float64 {
	if r.Enters == 0 {
		return 0
	}
	if r.Completions > 0 {
		return float64(r.Completions) / float64(r.Enters)
	}
	return 2 * float64(r.Requests) / float64(r.Enters)
}

func (c *Config) setDefaults() {
	if c.Conns <= 0 {
		c.Conns = 1
	}
	if c.Size <= 0 {
		c.Size = 64
	}
	if c.Duration <= 0 {
		c.Duration = time.Second
	}
	if c.Stall <= 0 {
		c.Stall = 5 * time.Second
	}
	if c.Resend <= 0 {
		c.Resend = 50 * time.Millisecond
	}
}
