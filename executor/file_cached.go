//go:build linux

package executor

import (
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A read that the page cache holds costs the same in the kernel whether it
// comes through the ring or through a system call, and the ring adds a
// park and a wake-up of the reading goroutine. So ReadAt first asks for the
// cached bytes with preadv2(RWF_NOWAIT) on the calling goroutine; that
// never waits for the disk (the kernel answers EAGAIN instead), and what is
// not cached goes through the ring as before. O_DIRECT reads skip it.

// noCachedReads is set once the kernel lacks preadv2 (before 4.6).
var noCachedReads atomic.Bool

// readCached reads what of p at off is in the page cache, without waiting:
// it returns the bytes read, or 0 when the ring must do the read (nothing
// cached, EOF to be confirmed, or an error the ring will report in full).
func (f *File) readCached(p []byte, off int64) int {
	if f.direct || f.noCached.Load() || noCachedReads.Load() || len(p) == 0 {
		return 0
	}
	if f.sfd.acquire() != nil {
		return 0
	}
	iov := unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	n, _, errno := unix.Syscall6(unix.SYS_PREADV2, uintptr(f.sfd.fd), uintptr(unsafe.Pointer(&iov)), 1,
		uintptr(off), 0, unix.RWF_NOWAIT)
	f.sfd.releaseRef()
	switch errno {
	case 0:
		return int(n)
	case syscall.EOPNOTSUPP, syscall.ESPIPE, syscall.EINVAL:
		f.noCached.Store(true) // not for this file (or RWF_NOWAIT unknown)
	case syscall.ENOSYS:
		noCachedReads.Store(true) // no preadv2 at all
	}
	return 0
}
