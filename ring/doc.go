// Package ring is kasync's binding to Linux io_uring: what liburing is to C,
// written in Go over golang.org/x/sys/unix. It is mechanism only: no
// goroutines, no locks, no policy. The executor package builds the runtime on it.
//
// # Model
//
// A Ring is a pair of queues shared with the kernel. To start an operation,
// take a submission queue entry with GetSQE, fill it in with one of the SQE
// Prep methods, give it a user data value, and Submit. The kernel performs
// the operation and posts a completion queue entry (CQE) carrying that user
// data and the result (Res: a count, or -errno). Reap CQEs with PeekCQE,
// WaitCQE or PeekBatch, and hand them back with SeenCQE or CQAdvance.
// Submitting and waiting can be one system call: SubmitAndWait and
// SubmitAndWaitTimeout.
//
// Getting, preparing, submitting and reaping allocate nothing.
//
// # Lifetimes
//
// The kernel reads and writes memory through pointers in SQEs, and the Go
// garbage collector cannot see those pointers. Every Prep method says how long
// its memory must stay alive and unmoved: until submission (the kernel copies
// it while the Submit call runs) or until completion (the final CQE). Go stacks
// move, so what a Prep method is given escapes to the heap (the compiler
// allocates it there); keep it reachable (runtime.KeepAlive, or a field of a
// live object) or use off-heap memory such as BufRing's or unix.Mmap's.
//
// A Ring is not safe for concurrent use. Close unmaps the queues and closes the
// ring; the kernel cancels whatever was still in flight. Every method of a
// closed ring returns ErrClosed.
//
// # Kernel versions
//
// Linux 6.1 or newer is the target; New works from 5.11 (EXT_ARG waits),
// buffer rings need 5.19, NO_SQARRAY 6.6, incremental buffers 6.12. Ask
// Supports(op) and HasFeature(f) instead of comparing versions. Where the
// kernel refuses io_uring (seccomp, kernel.io_uring_disabled, memlock), New
// returns an error wrapping ErrUnavailable that says why.
package ring
