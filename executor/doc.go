// Package executor is kasync's runtime over io_uring: an Executor runs tasks
// (Spawn), drives their I/O on io_uring rings, and stops everything cleanly
// when it is closed (kasync's AutoStopHandle).
//
// # Operations
//
// Every request the executor sends to the kernel (a network read, a file
// write, a timer) goes through one lifecycle (op.go): a slot in its loop's
// table, user data that carries the slot and a generation, a batch
// submission, a completion routed back by that user data, and a release.
// A CQE for an old generation of a slot is dropped, so a late or extra
// completion never reaches the slot's next owner. Cancellation (a context
// that is done, a deadline, Close) submits ASYNC_CANCEL and still waits for
// the operation's own completion: when a call returns, the kernel is done
// with its buffer, and the result says whether the operation completed or
// was cancelled, so no byte read or written goes unreported.
//
// # Lifetimes
//
// Buffers passed to an operation belong to the kernel until the call
// returns. A descriptor stays open while any operation on it is in flight:
// closing it cancels them, and the real close(2) happens after the last one
// completed, so a reused descriptor number never receives a stale request.
// Close of the Executor cancels every task's context and every operation,
// reaps every completion, waits for every task, and closes the rings; it
// leaves no goroutine or descriptor behind.
//
// # Driving the rings from Go
//
// A goroutine blocked in io_uring_enter holds an OS thread and its P, and
// goroutines locked to threads pay an OS context switch per hand-off, so the
// executor never blocks in the kernel. Each loop's ring is set up with
// COOP_TASKRUN and TASKRUN_FLAG (any thread may enter). A goroutine that
// starts an operation queues its SQE and parks; a flusher goroutine, woken
// once per batch, yields first so that every runnable goroutine queues its
// SQE, then submits them all with one io_uring_enter and reaps what
// completed. Completions that arrive while everyone sleeps wake a poller
// goroutine parked in Go's netpoller on the ring's descriptor. Each
// completion wakes exactly the goroutine waiting for it.
//
// Measured on the development machine (2 cores, Linux 6.18, Go 1.26,
// GOMAXPROCS=1, taskset -c 0; medians of 5):
//
//   - BenchmarkNop64, 64 goroutines each doing one 64-byte read of /dev/zero
//     at a time: 879 ns per read through the executor against 491 ns for the
//     plain read(2), 0.56x, with 58 SQEs per enter and 0 allocations per
//     operation. A /dev/zero read is the best case for a plain system call:
//     it never blocks, so there is nothing for a ring to overlap, and the
//     executor's cost is the goroutine park and wake-up per operation.
//   - Where it counts, network I/O (bench/, 64-byte echo, one core): the
//     goroutine-per-connection echo on this executor does 0.99-1.14x Go
//     net's round trips at 100 connections (the margin is within the VM's
//     noise), net/http on its listener 1.14-1.32x net/http on Go's, and the
//     event-driven Serve 1.35-1.55x Go net and 1.8x gnet.
//   - Files: reads that wait for the device (O_DIRECT) all stay in flight,
//     2.15x os.File with 6 threads against 24-34. A read the page cache
//     holds costs the same in the ring as in a system call, plus the park,
//     so File.ReadAt takes cached data with preadv2(RWF_NOWAIT) first.
//
// Blocking in io_uring_enter from a goroutine, or a loop goroutine locked to
// its thread, measured worse in prototypes (0.45x Go net) and is left to the
// event-driven fast path (Serve), which owns a thread by design.
//
// # Where io_uring is refused
//
// If the kernel refuses io_uring (a container's seccomp profile,
// kernel.io_uring_disabled, the memlock limit), New logs one warning and
// returns an Executor whose Backend is BackendGo: tasks, timers, networking
// and files then run on Go's own runtime. With the Strict option New returns
// the error instead; it wraps ring.ErrUnavailable.
package executor
