//go:build linux

package ring

import (
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rsrcRegister mirrors struct io_uring_rsrc_register.
type rsrcRegister struct {
	nr    uint32
	flags uint32
	_     uint64
	data  uint64
	tags  uint64
}

// rsrcUpdate mirrors struct io_uring_rsrc_update.
type rsrcUpdate struct {
	offset uint32
	_      uint32
	data   uint64
}

// register is the one io_uring_register call; arg must point at heap memory.
func (r *Ring) register(name string, op uintptr, arg unsafe.Pointer, nr uint32) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), op, uintptr(arg), uintptr(nr), 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, os.NewSyscallError("io_uring_register "+name, errno)
		}
		return int(n), nil
	}
}

// RegisterFiles installs fds in the ring's file table at indexes 0..len-1, for
// SQEs with SQEFixedFile (and direct accept, open, socket). The kernel takes
// its own reference: the fds may be closed afterwards.
func (r *Ring) RegisterFiles(fds []int32) error {
	if len(fds) == 0 {
		return os.NewSyscallError("io_uring_register files", unix.EINVAL)
	}
	_, err := r.register("files", regFiles, unsafe.Pointer(&fds[0]), uint32(len(fds)))
	runtime.KeepAlive(fds)
	return err
}

// RegisterFilesSparse creates an empty file table of n slots (Linux 5.19).
func (r *Ring) RegisterFilesSparse(n uint32) error {
	reg := &rsrcRegister{nr: n, flags: rsrcRegisterSparse}
	_, err := r.register("sparse files", regFiles2, unsafe.Pointer(reg), uint32(unsafe.Sizeof(*reg)))
	return err
}

// RegisterFilesUpdate replaces slots offset.. with fds (-1 empties a slot) and
// returns how many it updated.
func (r *Ring) RegisterFilesUpdate(offset uint32, fds []int32) (int, error) {
	if len(fds) == 0 {
		return 0, nil
	}
	up := &rsrcUpdate{offset: offset, data: addr(unsafe.Pointer(&fds[0]))}
	n, err := r.register("files update", regFilesUpdate, unsafe.Pointer(up), uint32(len(fds)))
	runtime.KeepAlive(fds)
	return n, err
}

// fileIndexRange mirrors struct io_uring_file_index_range.
type fileIndexRange struct {
	off, len uint32
	_        uint64
}

// RegisterFileAllocRange limits the slots FileIndexAlloc picks from.
func (r *Ring) RegisterFileAllocRange(offset, n uint32) error {
	rng := &fileIndexRange{off: offset, len: n}
	_, err := r.register("file alloc range", regFileAllocRange, unsafe.Pointer(rng), 0)
	return err
}

// UnregisterFiles drops the file table.
func (r *Ring) UnregisterFiles() error {
	_, err := r.register("unregister files", unregFiles, nil, 0)
	return err
}

// RegisterBuffers pins bufs in the kernel for READ_FIXED / WRITE_FIXED; buffer
// i is used with bufIndex i. bufs: until UnregisterBuffers or Close (use
// off-heap memory, e.g. from unix.Mmap, or keep them reachable).
func (r *Ring) RegisterBuffers(bufs [][]byte) error {
	if len(bufs) == 0 {
		return os.NewSyscallError("io_uring_register buffers", unix.EINVAL)
	}
	iov := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iov[i].Base = unsafe.SliceData(b)
		iov[i].SetLen(len(b))
	}
	_, err := r.register("buffers", regBuffers, unsafe.Pointer(&iov[0]), uint32(len(iov)))
	runtime.KeepAlive(bufs)
	return memlockError(err, "buffers", BuffersMemlock(bufs))
}

// UnregisterBuffers releases the registered buffers.
func (r *Ring) UnregisterBuffers() error {
	_, err := r.register("unregister buffers", unregBuffers, nil, 0)
	return err
}

// RegisterEventfd makes the kernel signal efd on every completion (async: only
// for those completed out of line).
func (r *Ring) RegisterEventfd(efd int, async bool) error {
	op := uintptr(regEventfd)
	if async {
		op = regEventfdAsync
	}
	fd := new(int32)
	*fd = int32(efd)
	_, err := r.register("eventfd", op, unsafe.Pointer(fd), 1)
	return err
}

// UnregisterEventfd removes the eventfd.
func (r *Ring) UnregisterEventfd() error {
	_, err := r.register("unregister eventfd", unregEventfd, nil, 0)
	return err
}

// RegisterRingFd registers the ring's own fd so that io_uring_enter skips the
// fd lookup (Linux 5.18). The kernel keeps registered ring fds per thread: call
// it from a goroutine locked to its thread (runtime.LockOSThread), and enter
// and Close the ring from that thread only.
func (r *Ring) RegisterRingFd() error {
	if r.enterFlags&enterRegisteredRing != 0 {
		return nil
	}
	up := &rsrcUpdate{offset: ^uint32(0), data: uint64(r.fd)}
	if _, err := r.register("ring fd", regRingFds, unsafe.Pointer(up), 1); err != nil {
		return err
	}
	r.enterFd = int(up.offset)
	r.enterFlags |= enterRegisteredRing
	return nil
}

// UnregisterRingFd undoes RegisterRingFd (from the same thread).
func (r *Ring) UnregisterRingFd() error {
	if r.enterFlags&enterRegisteredRing == 0 {
		return nil
	}
	up := &rsrcUpdate{offset: uint32(r.enterFd)}
	_, err := r.register("unregister ring fd", unregRingFds, unsafe.Pointer(up), 1)
	r.enterFd, r.enterFlags = r.fd, r.enterFlags&^enterRegisteredRing
	return err
}
