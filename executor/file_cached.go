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

// readCached reads what of p at off is in the page cache, without waiting.
// It returns the bytes read and whether the file ends there: a read of
// nothing at the end of a regular file returns 0 even with RWF_NOWAIT (it
// only says EAGAIN for what it would have to wait for), which is the io.EOF
// the ring's read would have given, so a ReadAt across or at the end of the
// file makes no ring operation. Otherwise, with fewer than len(p) bytes, the
// ring reads the rest (nothing cached, or an error the ring will report in
// full).
func (f *File) readCached(p []byte, off int64) (n int, eof bool) {
	if f.direct || f.noCached.Load() || noCachedReads.Load() || len(p) == 0 {
		return 0, false
	}
	if f.sfd.acquire() != nil {
		return 0, false
	}
	for n < len(p) {
		q := p[n:]
		iov := unix.Iovec{Base: &q[0]}
		iov.SetLen(len(q))
		m, _, errno := unix.Syscall6(unix.SYS_PREADV2, uintptr(f.sfd.fd), uintptr(unsafe.Pointer(&iov)), 1,
			uintptr(off+int64(n)), 0, unix.RWF_NOWAIT)
		switch errno {
		case 0:
		case syscall.EOPNOTSUPP, syscall.ESPIPE, syscall.EINVAL:
			f.noCached.Store(true) // not for this file (or RWF_NOWAIT unknown)
		case syscall.ENOSYS:
			noCachedReads.Store(true) // no preadv2 at all
		}
		if errno != 0 {
			break
		}
		if m == 0 {
			eof = true
			break
		}
		n += int(m)
	}
	f.sfd.releaseRef()
	return n, eof
}
