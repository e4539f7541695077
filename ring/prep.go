//go:build linux

package ring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Prep methods fill in an SQE for one operation, each a few lines, like
// liburing's io_uring_prep_* helpers. They set every field, so an SQE from
// GetSQE can be prepared as it is; set flags and user data afterwards.
//
// Memory an SQE points at is read or written by the kernel, and the Go garbage
// collector does not know it. Go stacks move, so each Prep method makes the
// compiler put the memory it is given on the heap, which does not move; the
// caller keeps it reachable (or uses off-heap memory) for as long as each
// method's doc says:
//   - "until completion": until the operation's final CQE has been reaped;
//   - "until submission": until the Submit that passes the SQE returns (the
//     kernel copies it while preparing the request; FeatSubmitStable).

func ptr[T any](p *T) uint64 { return addr(unsafe.Pointer(p)) }

func bufAddr(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return addr(unsafe.Pointer(unsafe.SliceData(b)))
}

func iovAddr(iov []unix.Iovec) uint64 {
	if len(iov) == 0 {
		return 0
	}
	return addr(unsafe.Pointer(unsafe.SliceData(iov)))
}

// addr turns p into an SQE address. It also makes p escape, so the compiler
// puts what p points at on the heap, which does not move: a uintptr alone
// would let a caller's buffer stay on its stack, and Go stacks move.
func addr(p unsafe.Pointer) uint64 {
	if escapeNever {
		escapeSink = p
	}
	return uint64(uintptr(p))
}

var escapeNever bool // never set

//lint:ignore U1000 written (never, in fact) only so that pointers escape
var escapeSink unsafe.Pointer

// PrepNop does nothing; its completion has Res 0.
func (s *SQE) PrepNop() { s.reset(OpNop, -1, 0, 0, 0) }

// PrepRead reads into buf at offset (-1: the file position). buf: until completion.
func (s *SQE) PrepRead(fd int, buf []byte, offset int64) {
	s.reset(OpRead, int32(fd), bufAddr(buf), uint32(len(buf)), uint64(offset))
}

// PrepWrite writes buf at offset (-1: the file position). buf: until completion.
func (s *SQE) PrepWrite(fd int, buf []byte, offset int64) {
	s.reset(OpWrite, int32(fd), bufAddr(buf), uint32(len(buf)), uint64(offset))
}

// PrepReadv reads into the buffers iov describes. The buffers: until
// completion; the iovec array: until submission.
func (s *SQE) PrepReadv(fd int, iov []unix.Iovec, offset int64) {
	s.reset(OpReadv, int32(fd), iovAddr(iov), uint32(len(iov)), uint64(offset))
}

// PrepWritev writes the buffers iov describes; lifetimes as PrepReadv.
func (s *SQE) PrepWritev(fd int, iov []unix.Iovec, offset int64) {
	s.reset(OpWritev, int32(fd), iovAddr(iov), uint32(len(iov)), uint64(offset))
}

// PrepReadFixed reads into buf, which lies inside registered buffer bufIndex.
func (s *SQE) PrepReadFixed(fd int, buf []byte, offset int64, bufIndex uint16) {
	s.reset(OpReadFixed, int32(fd), bufAddr(buf), uint32(len(buf)), uint64(offset))
	s.BufIndex = bufIndex
}

// PrepWriteFixed writes buf, which lies inside registered buffer bufIndex.
func (s *SQE) PrepWriteFixed(fd int, buf []byte, offset int64, bufIndex uint16) {
	s.reset(OpWriteFixed, int32(fd), bufAddr(buf), uint32(len(buf)), uint64(offset))
	s.BufIndex = bufIndex
}

// PrepFsync flushes fd to storage; flags FsyncDatasync makes it fdatasync.
func (s *SQE) PrepFsync(fd int, flags uint32) {
	s.reset(OpFsync, int32(fd), 0, 0, 0)
	s.OpFlags = flags
}

// PrepFallocate is fallocate(fd, mode, offset, length).
func (s *SQE) PrepFallocate(fd int, mode uint32, offset, length int64) {
	s.reset(OpFallocate, int32(fd), uint64(length), mode, uint64(offset))
}

// PrepOpenat opens path (NUL-terminated, e.g. from unix.BytePtrFromString)
// relative to dirfd (unix.AT_FDCWD). path: until submission.
func (s *SQE) PrepOpenat(dirfd int, path *byte, flags int, mode uint32) {
	s.reset(OpOpenat, int32(dirfd), ptr(path), mode, 0)
	s.OpFlags = uint32(flags)
}

// PrepOpenatDirect is PrepOpenat that installs the file at registered index
// fileIndex (or FileIndexAlloc) instead of returning an fd.
func (s *SQE) PrepOpenatDirect(dirfd int, path *byte, flags int, mode uint32, fileIndex uint32) {
	s.PrepOpenat(dirfd, path, flags&^unix.O_CLOEXEC, mode)
	s.SetFileIndex(fileIndex)
}

// PrepClose closes fd.
func (s *SQE) PrepClose(fd int) { s.reset(OpClose, int32(fd), 0, 0, 0) }

// PrepCloseDirect empties registered file slot fileIndex.
func (s *SQE) PrepCloseDirect(fileIndex uint32) {
	s.reset(OpClose, 0, 0, 0, 0)
	s.SetFileIndex(fileIndex)
}

// PrepStatx is statx(dirfd, path, flags, mask, stat). path: until submission;
// stat: until completion.
func (s *SQE) PrepStatx(dirfd int, path *byte, flags int, mask uint32, stat *unix.Statx_t) {
	s.reset(OpStatx, int32(dirfd), ptr(path), mask, ptr(stat))
	s.OpFlags = uint32(flags)
}

// PrepSplice moves n bytes from fdIn to fdOut, one of which must be a pipe.
// An offset of -1 means the fd's own position (and is required for a pipe).
func (s *SQE) PrepSplice(fdIn int, offIn int64, fdOut int, offOut int64, n uint32, flags uint32) {
	s.reset(OpSplice, int32(fdOut), uint64(offIn), n, uint64(offOut))
	s.SpliceFdIn = int32(fdIn)
	s.OpFlags = flags
}

// PrepPollAdd completes once fd is ready for events (unix.POLLIN, ...); Res is
// the ready mask.
func (s *SQE) PrepPollAdd(fd int, events uint32) {
	s.reset(OpPollAdd, int32(fd), 0, 0, 0)
	s.OpFlags = events
}

// PrepPollMultishot is PrepPollAdd that posts a CQE (with CQEFMore) each time
// fd becomes ready, until cancelled or it fails.
func (s *SQE) PrepPollMultishot(fd int, events uint32) {
	s.PrepPollAdd(fd, events)
	s.Len = PollAddMulti
}

// PrepPollRemove removes the poll whose SQE had user data target.
func (s *SQE) PrepPollRemove(target uint64) { s.reset(OpPollRemove, -1, target, 0, 0) }

// PrepSend sends buf on a socket with MSG_* flags. buf: until completion.
func (s *SQE) PrepSend(fd int, buf []byte, flags int) {
	s.reset(OpSend, int32(fd), bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = uint32(flags)
}

// PrepSendZC sends buf without copying it. Two CQEs come back: the result
// (with CQEFMore), then a notification (CQE.Notification) once the kernel is
// done with buf. buf: until the notification.
func (s *SQE) PrepSendZC(fd int, buf []byte, flags int, zcFlags uint16) {
	s.PrepSend(fd, buf, flags)
	s.Opcode = OpSendZC
	s.IoPrio = zcFlags
}

// PrepRecv receives into buf. buf: until completion. With buf nil and
// SetBufferGroup, the kernel picks a provided buffer.
func (s *SQE) PrepRecv(fd int, buf []byte, flags int) {
	s.reset(OpRecv, int32(fd), bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = uint32(flags)
}

// PrepRecvMultishot posts a CQE for each arrival of data, each in a buffer the
// kernel takes from group bgid, until the peer closes, an error, or
// cancellation (a CQE without CQEFMore is the last).
func (s *SQE) PrepRecvMultishot(fd int, flags int, bgid uint16) {
	s.PrepRecv(fd, nil, flags)
	s.IoPrio = RecvMultishot
	s.SetBufferGroup(bgid)
}

// PrepSendmsg is sendmsg(2). msg, its iovecs, name and control: until completion.
func (s *SQE) PrepSendmsg(fd int, msg *unix.Msghdr, flags int) {
	s.reset(OpSendmsg, int32(fd), ptr(msg), 1, 0)
	s.OpFlags = uint32(flags)
}

// PrepRecvmsg is recvmsg(2). msg and everything it points at: until completion.
func (s *SQE) PrepRecvmsg(fd int, msg *unix.Msghdr, flags int) {
	s.reset(OpRecvmsg, int32(fd), ptr(msg), 1, 0)
	s.OpFlags = uint32(flags)
}

// PrepAccept accepts a connection; Res is the new fd. addr and addrLen may be
// nil; if not, until completion. flags are SOCK_CLOEXEC / SOCK_NONBLOCK.
func (s *SQE) PrepAccept(fd int, addr *unix.RawSockaddrAny, addrLen *uint32, flags int) {
	s.reset(OpAccept, int32(fd), ptr(addr), 0, ptr(addrLen))
	s.OpFlags = uint32(flags)
}

// PrepAcceptMultishot posts a CQE (with CQEFMore) for every accepted
// connection until cancelled or it fails.
func (s *SQE) PrepAcceptMultishot(fd int, flags int) {
	s.PrepAccept(fd, nil, nil, flags)
	s.IoPrio = AcceptMultishot
}

// PrepAcceptDirect accepts into registered file slot fileIndex (or
// FileIndexAlloc); Res is the slot index then.
func (s *SQE) PrepAcceptDirect(fd int, addr *unix.RawSockaddrAny, addrLen *uint32, flags int, fileIndex uint32) {
	s.PrepAccept(fd, addr, addrLen, flags&^unix.SOCK_CLOEXEC)
	s.SetFileIndex(fileIndex)
}

// PrepConnect connects a socket to the address at sa (addrLen bytes, e.g.
// a *unix.RawSockaddrInet4). sa: until submission.
func (s *SQE) PrepConnect(fd int, sa unsafe.Pointer, addrLen uint32) {
	s.reset(OpConnect, int32(fd), addr(sa), 0, uint64(addrLen))
}

// PrepSocket creates a socket; Res is the new fd.
func (s *SQE) PrepSocket(domain, typ, proto int, flags uint32) {
	s.reset(OpSocket, int32(domain), 0, uint32(proto), uint64(typ))
	s.OpFlags = flags
}

// PrepShutdown is shutdown(fd, how).
func (s *SQE) PrepShutdown(fd int, how int) { s.reset(OpShutdown, int32(fd), 0, uint32(how), 0) }

// PrepTimeout completes with -ETIME after ts, or with 0 once count other
// completions have been posted (count 0: time only). ts: until submission.
func (s *SQE) PrepTimeout(ts *unix.Timespec, count uint32, flags uint32) {
	s.reset(OpTimeout, -1, ptr(ts), 1, uint64(count))
	s.OpFlags = flags
}

// PrepTimeoutRemove cancels the timeout whose SQE had user data target.
func (s *SQE) PrepTimeoutRemove(target uint64, flags uint32) {
	s.reset(OpTimeoutRemove, -1, target, 0, 0)
	s.OpFlags = flags
}

// PrepLinkTimeout cancels the SQE linked before it (SQEIOLink) if it has not
// completed after ts. ts: until submission.
func (s *SQE) PrepLinkTimeout(ts *unix.Timespec, flags uint32) {
	s.reset(OpLinkTimeout, -1, ptr(ts), 1, 0)
	s.OpFlags = flags
}

// PrepCancel cancels the request whose SQE had user data target (with
// CancelAll: every such request). Res is 0, -ENOENT (not found) or -EALREADY
// (already running, may still complete).
func (s *SQE) PrepCancel(target uint64, flags uint32) {
	s.reset(OpAsyncCancel, -1, target, 0, 0)
	s.OpFlags = flags
}

// PrepCancelFd cancels requests on fd (flags: CancelAll for all of them, and
// then Res is how many; CancelFdFixed if fd is a registered index).
func (s *SQE) PrepCancelFd(fd int, flags uint32) {
	s.reset(OpAsyncCancel, int32(fd), 0, 0, 0)
	s.OpFlags = flags | CancelFd
}

// PrepCancelAny cancels every request in flight on the ring; Res is how many.
func (s *SQE) PrepCancelAny() {
	s.reset(OpAsyncCancel, -1, 0, 0, 0)
	s.OpFlags = CancelAny | CancelAll
}

// PrepMsgRing posts a CQE with user data userData and Res res on the ring
// whose fd is ringFd, waking whoever waits on it.
func (s *SQE) PrepMsgRing(ringFd int, res uint32, userData uint64, flags uint32) {
	s.reset(OpMsgRing, int32(ringFd), msgData, res, userData)
	s.OpFlags = flags
}

// PrepProvideBuffers hands n buffers of size bytes each, laid out back to back
// in mem, to group bgid with ids from startID (the legacy, pre-ring way).
// mem: until the kernel has used and returned every buffer.
func (s *SQE) PrepProvideBuffers(mem []byte, size, n int, bgid, startID uint16) {
	s.reset(OpProvideBuffers, int32(n), bufAddr(mem), uint32(size), uint64(startID))
	s.BufIndex = bgid
}
