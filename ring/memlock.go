//go:build linux

package ring

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Locked memory. For a process without CAP_IPC_LOCK the kernel charges
// io_uring memory to its user's RLIMIT_MEMLOCK: one counter per user,
// shared by all of that user's processes, freed by a ring's asynchronous
// teardown some milliseconds after Close or exit. Measured on Linux 6.18 as
// an unprivileged user (ring/memlock_test.go checks it):
//
//   - a ring's SQ/CQ memory and its SQEs, in whole pages: 1024 entries with
//     a CQ of 4096 lock 136 KiB, 4096 with 32768 about 800 KiB, 1 entry 8 KiB.
//     (Linux 5.12 to 6.12 charged rings to the memory cgroup instead; the
//     region code of later kernels charges them to the limit again.)
//   - a provided-buffer ring: its entries (16 bytes each, whole pages),
//     whether the kernel allocates them (IOU_PBUF_RING_MMAP) or we do; the
//     buffers themselves are ordinary memory and are not charged.
//   - registered buffers (IORING_REGISTER_BUFFERS): every page they span,
//     once per ring they are registered with.
//
// Where the limit is exceeded, io_uring_setup and io_uring_register fail
// with ENOMEM.

// pageSize is the unit the kernel charges in.
var pageSize = os.Getpagesize()

func pages(n int) int { return (n + pageSize - 1) / pageSize * pageSize }

// MemlockCost returns the bytes of locked memory a ring set up with entries
// SQEs and cqEntries CQEs (0: twice entries) and setup flags would be
// charged, as New rounds them (up to powers of two).
func MemlockCost(entries, cqEntries, flags uint32) int {
	entries = roundPow2(min(max(entries, 1), MaxEntries))
	if cqEntries == 0 || flags&SetupCQSize == 0 {
		cqEntries = 2 * entries
	}
	cqEntries = roundPow2(min(max(cqEntries, entries), maxCQEntries))
	cqe, sqe := cqeSize, sqeSize
	if flags&SetupCQE32 != 0 {
		cqe *= 2
	}
	if flags&SetupSQE128 != 0 {
		sqe *= 2
	}
	const ringsHeader = 64 // offsetof(struct io_rings, cqes)
	rings := ringsHeader + int(cqEntries)*int(cqe)
	if flags&SetupNoSQArray == 0 {
		rings = (rings+63)&^63 + 4*int(entries)
	}
	return pages(rings) + pages(int(entries)*int(sqe))
}

func roundPow2(n uint32) uint32 {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len32(n-1)
}

// Memlock returns the bytes of locked memory the ring itself is charged
// (its SQ/CQ memory and SQEs), if its user is limited at all.
func (r *Ring) Memlock() int {
	p := &r.params
	flags := p.Flags | SetupCQSize
	return MemlockCost(p.SQEntries, p.CQEntries, flags)
}

// BufRingMemlock returns the bytes of locked memory a buffer ring of count
// entries is charged (its entries; not the buffers).
func BufRingMemlock(count uint32) int { return pages(int(count) * 16) }

// Memlock returns the bytes of locked memory the buffer ring is charged.
func (b *BufRing) Memlock() int { return BufRingMemlock(b.count) }

// BuffersMemlock returns the bytes of locked memory registering bufs with
// one ring is charged: every page they span.
func BuffersMemlock(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		addr := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
		start := addr &^ (pageSize - 1)
		end := pages(addr + len(b))
		n += end - start
	}
	return n
}

// MemlockLimit returns the RLIMIT_MEMLOCK in force (math.MaxUint64 for
// unlimited) and whether io_uring is charged against it at all: a process
// with CAP_IPC_LOCK (root, usually) is not.
func MemlockLimit() (limit uint64, charged bool) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return ^uint64(0), false
	}
	if rl.Cur == unix.RLIM_INFINITY {
		return ^uint64(0), !hasIPCLock()
	}
	return rl.Cur, !hasIPCLock()
}

func hasIPCLock() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_IPC_LOCK/32].Effective&(1<<(unix.CAP_IPC_LOCK%32)) != 0
}

// MemlockHint says what the memlock limit is and how to raise it, for the
// errors of a refusal with ENOMEM.
func MemlockHint() string {
	limit, charged := MemlockLimit()
	s := "unlimited"
	if limit != ^uint64(0) {
		s = FormatBytes(limit)
	}
	who := ""
	if charged {
		who = fmt.Sprintf(", shared by all processes of uid %d", os.Getuid())
	}
	return fmt.Sprintf("out of locked memory: RLIMIT_MEMLOCK is %s%s; raise it with ulimit -l, "+
		"a memlock line in /etc/security/limits.conf, LimitMEMLOCK= in the systemd unit, or "+
		"docker run --ulimit memlock=-1 (or grant CAP_IPC_LOCK)", s, who)
}

// FormatBytes writes n as KiB or MiB where it divides evenly.
func FormatBytes(n uint64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// MemlockError is a registration the memlock limit refused (ENOMEM from
// io_uring_register): buffer rings and registered buffers.
type MemlockError struct {
	Op    string // "buffer ring", "buffers"
	Bytes int    // what the registration would have locked
	Hint  string // MemlockHint at the time
}

func (e *MemlockError) Error() string {
	return fmt.Sprintf("io_uring_register %s (%s): %v (%s)", e.Op, FormatBytes(uint64(e.Bytes)), syscall.ENOMEM, e.Hint)
}

// Unwrap returns ENOMEM.
func (e *MemlockError) Unwrap() error { return syscall.ENOMEM }

// memlockError turns a registration's ENOMEM into a MemlockError.
func memlockError(err error, op string, bytes int) error {
	if errors.Is(err, syscall.ENOMEM) {
		return &MemlockError{Op: op, Bytes: bytes, Hint: MemlockHint()}
	}
	return err
}
