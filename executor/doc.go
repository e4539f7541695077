// Package executor is kasync's runtime over io_uring: an Executor runs tasks,
// drives their I/O on io_uring rings, and stops everything cleanly when it is
// closed (kasync's AutoStopHandle).
//
// # Which entry point
//
//   - A drop-in for Go's net: Listen returns a net.Listener, Dial a net.Conn
//     and ListenPacket a net.PacketConn, so http.Serve and anything else
//     written against net's interfaces runs on io_uring unchanged.
//   - The event-driven fast path, for the last factor of throughput: Serve
//     runs a Handler (OnOpen, OnData, OnClose) on loops that own their
//     threads, with no goroutine per connection or message; ServePacket
//     does the same for UDP, a PacketHandler per datagram. Server.Dial
//     opens an outbound connection from a loop (CONNECT on its ring) and
//     Server.Adopt takes in a net.Conn, each served by a Handler of its
//     own; with PauseRead, OnDrain and HalfCloser, two connections of a
//     loop forward to each other (examples/proxy -mode handler).
//   - Files: Open, OpenFile, Create and NewFile return a *File (io.ReaderAt
//     and friends, O_DIRECT, registered buffers, batches); CopyFile copies.
//   - Tasks and timers: Spawn, Sleep.
//   - The io_uring interface itself is package ring.
//
// Options are functions, one type per entry: Option for New, NetOption for
// Listen, ListenPacket and Dial (a call refuses an option that is not its
// own), ServeOption for Serve.
//
// # The core
//
// One operation lifecycle serves both kinds of loop and every layer. An op
// (op.go, optable.go) is a slot in its loop's table with a generation, and
// a small state machine: free, live, cancelling, done. Its SQE's user data
// carries slot and generation, so a CQE for a slot's old generation is
// dropped and never reaches the slot's next owner. One function routes a
// CQE to its op (opTable.dispatch), and one rule releases it: an op someone
// waits for is released by that waiter after the terminal CQE, an op nobody
// waits for (the fast path's callbacks) by dispatch after its last
// callback. Single-shot, linked-timeout, multishot (multishot.go) and batch
// ops are ways to start it (loop.start with a startSpec, startHeld,
// startBatch), not copies of it. Cancelling is an ASYNC_CANCEL, prepared in
// one place (prepCancel), that never ends an op by itself: the op's own CQE
// still comes, so a buffer is released only once the kernel is done with
// it, and a result is never lost.
//
// How an op ended becomes the error a user sees in one function
// (outcome.cancelCause): the descriptor closed by its owner (net.ErrClosed,
// os.ErrClosed), the Executor closed (ErrClosed), a deadline
// (os.ErrDeadlineExceeded), a context (its cause), or the kernel's errno,
// which the layers wrap in *net.OpError or *fs.PathError.
//
// # Lifetimes
//
// A descriptor's whole lifetime is one atomic state word (fd.go, in the
// manner of Go's internal/poll fdMutex): a closing bit, who closed it (its
// owner or the Executor), and a reference count, one for the open descriptor
// and one per op in flight. Conns, listeners, packet conns and files keep
// their closed state there and nowhere else. Close sets the bit, which
// refuses new ops, cancels those in flight, and drops the open reference;
// the real close(2) happens when the last reference goes, so a reused
// descriptor number never receives a stale request. Buffers passed to a call
// belong to the kernel until the call returns.
//
// A Conn's Write of up to 64 KiB is the one exception, made so that a
// writer does not park per message: its bytes are copied, their SEND holds
// a reference of its own, and Write returns once it is queued
// (conn_send.go). The next write-side call waits for that SEND and returns
// its error; Close lets it finish for up to 30 s, and the Executor's Close
// ends it at once.
//
// Close of the Executor refuses new work with ErrClosed, cancels every
// task's context and every op, closes every descriptor it made (conns,
// listeners with the connections queued in them, packet conns, files, on
// either backend), reaps every completion, waits for every task and Server,
// and closes the rings. Blocked calls return errors that match ErrClosed.
//
// # Driving the rings from Go
//
// A goroutine blocked in io_uring_enter holds an OS thread and its P, so
// goroutine-style I/O never blocks in the kernel: each of the Executor's
// loops (loop.go) has a ring with COOP_TASKRUN and TASKRUN_FLAG; a
// goroutine that starts an op queues its SQE and parks; a flusher, woken
// once per batch, yields so that every runnable goroutine queues its SQE,
// then submits them all with one enter and reaps; a poller parked in Go's
// netpoller on the ring's descriptor reaps what completes while everyone
// sleeps. Each completion wakes exactly the goroutine waiting for it.
//
// The fast path's loops (handler_loop.go) own a thread each: a goroutine
// locked to it, its ring SINGLE_ISSUER and DEFER_TASKRUN, one enter per turn
// that submits everything and waits, handlers run inline. Its connection
// state machine (handler_conn.go) asks for I/O through one small interface,
// connIO, implemented with SQEs on the ring (handler_uring_io.go) and, on
// the Go backend, with a reader and a writer goroutine per connection
// (handler_gobackend.go). Receive buffers for both kinds of loop come from
// one provided-buffer pool (bufpool.go).
//
// # Where io_uring is refused
//
// If the kernel refuses io_uring (a container's seccomp profile,
// kernel.io_uring_disabled, the memlock limit), New logs one warning and
// returns an Executor whose Backend is BackendGo: every entry point then
// runs on Go's own net, os and time, with the same API and the same
// promises, Close's above all. With WithStrict, New returns the error
// instead; it wraps ring.ErrUnavailable.
//
// The memlock limit (memlock.go) is met before it refuses: without
// CAP_IPC_LOCK, rings and buffer rings are charged to the user's
// RLIMIT_MEMLOCK, so New and each Serve size their rings to at most half
// of what is free (fewer entries, then fewer loops), a ring the kernel
// refuses is retried smaller, and where even the smallest is refused New
// falls back as above and a Serve runs that server alone on Go's net (one
// warning; WithStrict makes it an error). Stats and ServerStats say which
// backend and why (BackendReason).
package executor
