//go:build linux

package ring

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxEntries is the largest SQ size the kernel accepts (IORING_MAX_ENTRIES).
const MaxEntries = 32768

// maxCQEntries is the largest CQ size the kernel accepts (IORING_MAX_CQ_ENTRIES).
const maxCQEntries = 2 * MaxEntries

// Params mirrors struct io_uring_params: what New asked for, and what the
// kernel answered (sizes, features, ring offsets).
type Params struct {
	SQEntries    uint32
	CQEntries    uint32
	Flags        uint32
	SQThreadCPU  uint32
	SQThreadIdle uint32 // milliseconds
	Features     uint32
	WQFd         uint32
	_            [3]uint32
	SQOff        SQRingOffsets
	CQOff        CQRingOffsets
}

// SQRingOffsets mirrors struct io_sqring_offsets.
type SQRingOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, _ uint32
	UserAddr                                                    uint64
}

// CQRingOffsets mirrors struct io_cqring_offsets.
type CQRingOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, CQEs, Flags, _ uint32
	UserAddr                                                    uint64
}

// Option sets up a ring; pass any number to New.
type Option func(*config)

type config struct {
	p          Params
	noFeatures uint32
	noOps      []Op
	rawEnter   bool
}

// WithSQPoll starts a kernel thread that polls the SQ, so submitting needs no
// syscall while it is awake; it sleeps after idle without work.
func WithSQPoll(idle time.Duration) Option {
	return func(c *config) {
		c.p.Flags |= SetupSQPoll
		c.p.SQThreadIdle = uint32(idle / time.Millisecond)
	}
}

// WithSQPollCPU pins the SQPOLL thread to cpu (implies nothing without WithSQPoll).
func WithSQPollCPU(cpu int) Option {
	return func(c *config) { c.p.Flags |= SetupSQAff; c.p.SQThreadCPU = uint32(cpu) }
}

// WithIOPoll busy-polls for completions of O_DIRECT I/O on devices that support it.
func WithIOPoll() Option { return WithFlags(SetupIOPoll) }

// WithCQSize sizes the CQ at n entries instead of twice the SQ.
func WithCQSize(n uint32) Option {
	return func(c *config) { c.p.Flags |= SetupCQSize; c.p.CQEntries = n }
}

// WithClamp clamps too-large sizes to the maximum instead of failing.
func WithClamp() Option { return WithFlags(SetupClamp) }

// WithSubmitAll keeps submitting the rest of a batch when one SQE fails to prepare.
func WithSubmitAll() Option { return WithFlags(SetupSubmitAll) }

// WithCoopTaskrun stops the kernel from interrupting the thread to run
// completion work; it runs when the ring is next entered.
func WithCoopTaskrun() Option { return WithFlags(SetupCoopTaskrun) }

// WithTaskrunFlag makes the kernel raise a flag in the SQ ring when completion
// work is pending, so PeekCQE knows to enter the kernel.
func WithTaskrunFlag() Option { return WithFlags(SetupTaskrunFlag) }

// WithSingleIssuer promises that one thread submits. The kernel takes the
// thread that calls New as that thread: call New, Submit, the waits and the
// Register methods from one goroutine locked with runtime.LockOSThread
// (others get EEXIST).
func WithSingleIssuer() Option { return WithFlags(SetupSingleIssuer) }

// WithDeferTaskrun defers completion work until the issuing thread waits for
// completions (requires WithSingleIssuer).
func WithDeferTaskrun() Option { return WithFlags(SetupDeferTaskrun | SetupSingleIssuer) }

// WithNoSQArray drops the SQ index array; SQEs are consumed in ring order (6.6+).
func WithNoSQArray() Option { return WithFlags(SetupNoSQArray) }

// WithAttachWQ shares the async worker pool of the ring whose fd is given.
func WithAttachWQ(fd int) Option {
	return func(c *config) { c.p.Flags |= SetupAttachWQ; c.p.WQFd = uint32(fd) }
}

// WithRawEnter makes every io_uring_enter a raw system call, without the Go
// scheduler's bookkeeping (an enter that does not wait always is one): a
// goroutine waiting in it keeps its P instead of the scheduler handing the P
// to another thread and back around every wait. It is for an event loop on a
// goroutine locked to its thread, in a process that exists to run it: other
// goroutines get that P only when the scheduler preempts the loop (about
// every 10 ms).
func WithRawEnter() Option { return func(c *config) { c.rawEnter = true } }

// WithFlags ORs raw IORING_SETUP_* flags in.
func WithFlags(flags uint32) Option { return func(c *config) { c.p.Flags |= flags } }

// WithoutFeatures hides feature bits (Feat*) from Features, and WithoutOps hides
// opcodes from Supports, so tests can exercise what happens on older kernels.
func WithoutFeatures(mask uint32) Option { return func(c *config) { c.noFeatures |= mask } }

// WithoutOps hides opcodes from Supports; see WithoutFeatures.
func WithoutOps(ops ...Op) Option {
	return func(c *config) { c.noOps = append(c.noOps, ops...) }
}

// Ring is one io_uring instance: its SQ, CQ and registrations. A Ring is not
// safe for concurrent use; serialize access to it (the executor does).
type Ring struct {
	fd         int
	enterFd    int    // fd, or the registered ring index
	enterFlags uint32 // enterRegisteredRing once the ring fd is registered
	rawEnter   bool   // WithRawEnter
	params     Params
	noOps      [256]bool
	probed     *[256]bool // Supports answers, once probed
	closed     bool

	sq submissionQueue
	cq completionQueue

	sqMem, cqMem, sqeMem []byte

	// Arguments for io_uring_enter kept in the Ring so that passing their
	// address to the kernel does not allocate.
	waitArg getEventsArg
	waitTS  unix.Timespec

	stats Stats
}

type submissionQueue struct {
	khead, ktail, kflags, kdropped *uint32
	mask, entries                  uint32
	sqes                           *[MaxEntries]SQE // the first entries are mapped
	tail                           uint32           // next SQE to hand out; published to ktail on submit
	head                           uint32           // *khead as last loaded: the kernel has consumed at least this far
}

type completionQueue struct {
	khead, ktail, koverflow *uint32
	mask, entries           uint32
	cqes                    *[maxCQEntries]CQE // the first entries are mapped
	head                    uint32             // the value last stored to *khead (only we write it)
}

// getEventsArg mirrors struct io_uring_getevents_arg (IORING_ENTER_EXT_ARG).
type getEventsArg struct {
	sigmask     uint64
	sigmaskSz   uint32
	minWaitUsec uint32
	ts          uint64
}

// New sets up a ring with room for entries SQEs (rounded up to a power of two).
// Where io_uring is refused or missing, the error wraps ErrUnavailable.
func New(entries uint32, opts ...Option) (*Ring, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if entries == 0 || (entries > MaxEntries && c.p.Flags&SetupClamp == 0) {
		return nil, fmt.Errorf("ring: entries %d out of range 1..%d: %w", entries, MaxEntries, syscall.EINVAL)
	}
	r := &Ring{params: c.p, rawEnter: c.rawEnter}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&r.params)), 0)
	if errno != 0 {
		return nil, setupError(errno)
	}
	r.fd, r.enterFd = int(fd), int(fd)
	r.params.Features &^= c.noFeatures
	for _, op := range c.noOps {
		r.noOps[op] = true
	}
	if err := r.mmap(); err != nil {
		r.unmap()
		unix.Close(r.fd)
		return nil, err
	}
	return r, nil
}

func (r *Ring) mmap() error {
	p := &r.params
	sqSize := uintptr(p.SQOff.Array) + uintptr(p.SQEntries)*4
	if p.Flags&SetupNoSQArray != 0 {
		sqSize = uintptr(p.SQOff.Flags) + 4
	}
	cqSize := uintptr(p.CQOff.CQEs) + uintptr(p.CQEntries)*cqeSize
	single := p.Features&FeatSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	r.sqMem, err = mmapRing(r.fd, offSQRing, sqSize)
	if err != nil {
		return err
	}
	r.cqMem = r.sqMem
	if !single {
		if r.cqMem, err = mmapRing(r.fd, offCQRing, cqSize); err != nil {
			return err
		}
	}
	if r.sqeMem, err = mmapRing(r.fd, offSQEs, uintptr(p.SQEntries)*sqeSize); err != nil {
		return err
	}

	sq, cq := &r.sq, &r.cq
	sq.khead = u32At(r.sqMem, p.SQOff.Head)
	sq.ktail = u32At(r.sqMem, p.SQOff.Tail)
	sq.kflags = u32At(r.sqMem, p.SQOff.Flags)
	sq.kdropped = u32At(r.sqMem, p.SQOff.Dropped)
	sq.mask = *u32At(r.sqMem, p.SQOff.RingMask)
	sq.entries = *u32At(r.sqMem, p.SQOff.RingEntries)
	if sq.entries > MaxEntries || sq.mask != sq.entries-1 {
		return fmt.Errorf("ring: kernel reports an SQ of %d entries, mask %#x: %w", sq.entries, sq.mask, syscall.EINVAL)
	}
	// Indexing sqes and cqes with i&mask&(size-1) needs no bounds check;
	// the masks are in range, so the second AND changes nothing.
	sq.sqes = (*[MaxEntries]SQE)(unsafe.Pointer(&r.sqeMem[0]))
	sq.tail = atomic.LoadUint32(sq.ktail)
	sq.head = atomic.LoadUint32(sq.khead)
	if p.Flags&SetupNoSQArray == 0 {
		// Index i of the SQ array names SQE i for good: SQEs are then
		// consumed in ring order, as with NO_SQARRAY.
		array := unsafe.Slice(u32At(r.sqMem, p.SQOff.Array), sq.entries)
		for i := range array {
			array[i] = uint32(i)
		}
	}

	cq.khead = u32At(r.cqMem, p.CQOff.Head)
	cq.ktail = u32At(r.cqMem, p.CQOff.Tail)
	cq.koverflow = u32At(r.cqMem, p.CQOff.Overflow)
	cq.mask = *u32At(r.cqMem, p.CQOff.RingMask)
	cq.entries = *u32At(r.cqMem, p.CQOff.RingEntries)
	if cq.entries > maxCQEntries || cq.mask != cq.entries-1 {
		return fmt.Errorf("ring: kernel reports a CQ of %d entries, mask %#x: %w", cq.entries, cq.mask, syscall.EINVAL)
	}
	cq.cqes = (*[maxCQEntries]CQE)(unsafe.Pointer(&r.cqMem[p.CQOff.CQEs]))
	cq.head = atomic.LoadUint32(cq.khead)
	return nil
}

func mmapRing(fd int, off int64, size uintptr) ([]byte, error) {
	b, err := unix.Mmap(fd, off, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, os.NewSyscallError("mmap io_uring", err)
	}
	return b, nil
}

func u32At(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

func (r *Ring) unmap() {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
	}
	if len(r.cqMem) > 0 && &r.cqMem[0] != &r.sqMem[0] {
		unix.Munmap(r.cqMem)
	}
	if r.sqMem != nil {
		unix.Munmap(r.sqMem)
	}
	r.sqMem, r.cqMem, r.sqeMem = nil, nil, nil
	r.sq.sqes, r.cq.cqes = nil, nil
}

// Close unmaps the rings and closes the ring's fd. The kernel cancels what is
// still in flight; memory those operations used must stay untouched until Close
// returns. A second Close returns ErrClosed.
func (r *Ring) Close() error {
	if r.closed {
		return ErrClosed
	}
	r.UnregisterRingFd() // before closed is set, or register refuses
	r.closed = true
	r.unmap()
	return os.NewSyscallError("close io_uring", unix.Close(r.fd))
}

// Fd returns the ring's file descriptor (for polling it, or MSG_RING).
func (r *Ring) Fd() int { return r.fd }

// Params returns what the kernel reported at setup.
func (r *Ring) Params() Params { return r.params }

// Features returns the kernel's IORING_FEAT_* bits, less those hidden by WithoutFeatures.
func (r *Ring) Features() uint32 { return r.params.Features }

// HasFeature reports whether every bit of f is in Features.
func (r *Ring) HasFeature(f uint32) bool { return r.params.Features&f == f }

// Flags returns the setup flags in force.
func (r *Ring) Flags() uint32 { return r.params.Flags }

// SQEntries and CQEntries return the ring sizes the kernel chose.
func (r *Ring) SQEntries() uint32 { return r.sq.entries }

// CQEntries returns the CQ size the kernel chose.
func (r *Ring) CQEntries() uint32 { return r.cq.entries }
