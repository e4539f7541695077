//go:build linux

package ring

import (
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Tests of the prep helpers for files and pipes, each against the real kernel.

func TestNop(t *testing.T) {
	r := newRing(t, 4)
	s := sqe(t, r)
	s.PrepNop()
	s.SetUserData(0xfeedface_cafebeef)
	c := run(t, r, 1)[0]
	if c.UserData != 0xfeedface_cafebeef || c.Res != 0 || c.Flags != 0 {
		t.Fatalf("NOP CQE %+v", c)
	}
}

func TestReadWriteFile(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 8)
	path, fd := tempFile(t, "")
	out := []byte("hello, io_uring")
	s := sqe(t, r)
	s.PrepWrite(fd, out, 0)
	s.SetUserData(1)
	s.SetFlags(SQEIOLink) // the read must see the write
	in := make([]byte, 64)
	s = sqe(t, r)
	s.PrepRead(fd, in, 7)
	s.SetUserData(2)
	cqes := run(t, r, 2)
	wantRes(t, byUD(t, cqes, 1), int32(len(out)))
	wantRes(t, byUD(t, cqes, 2), int32(len(out)-7))
	if got := string(in[:len(out)-7]); got != "io_uring" {
		t.Fatalf("read %q", got)
	}
	if b, _ := os.ReadFile(path); string(b) != string(out) {
		t.Fatalf("file holds %q", b)
	}
}

func TestReadPipeCurrentPosition(t *testing.T) {
	r := newRing(t, 4)
	rd, wr := pipe(t)
	write(t, wr, "abc")
	buf := make([]byte, 8)
	sqe(t, r).PrepRead(rd, buf, -1)
	wantRes(t, run(t, r, 1)[0], 3)
	if string(buf[:3]) != "abc" {
		t.Fatalf("read %q", buf[:3])
	}
}

func TestReadvWritev(t *testing.T) {
	r := newRing(t, 8)
	_, fd := tempFile(t, "")
	a, b := []byte("vector"), []byte("ed io")
	iov := make([]unix.Iovec, 2)
	iov[0].Base, iov[1].Base = &a[0], &b[0]
	iov[0].SetLen(len(a))
	iov[1].SetLen(len(b))
	sqe(t, r).PrepWritev(fd, iov, 0)
	wantRes(t, run(t, r, 1)[0], 11)

	x, y := make([]byte, 3), make([]byte, 8)
	riov := make([]unix.Iovec, 2)
	riov[0].Base, riov[1].Base = &x[0], &y[0]
	riov[0].SetLen(len(x))
	riov[1].SetLen(len(y))
	sqe(t, r).PrepReadv(fd, riov, 0)
	wantRes(t, run(t, r, 1)[0], 11)
	if string(x) != "vec" || string(y) != "tored io" {
		t.Fatalf("readv got %q %q", x, y)
	}
}

func TestReadWriteFixed(t *testing.T) {
	r := newRing(t, 8)
	_, fd := tempFile(t, "")
	mem, err := unix.Mmap(-1, 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	heap := make([]byte, 4096)
	if err := r.RegisterBuffers([][]byte{mem, heap}); err != nil {
		t.Fatal(err)
	}
	copy(mem[100:], "fixed buffers")
	sqe(t, r).PrepWriteFixed(fd, mem[100:113], 0, 0)
	wantRes(t, run(t, r, 1)[0], 13)
	sqe(t, r).PrepReadFixed(fd, heap[10:20], 6, 1)
	wantRes(t, run(t, r, 1)[0], 7)
	if got := string(heap[10:17]); got != "buffers" {
		t.Fatalf("READ_FIXED got %q", got)
	}
	// Memory outside the registered buffer is refused.
	other := make([]byte, 16)
	sqe(t, r).PrepReadFixed(fd, other, 0, 1)
	wantErr(t, run(t, r, 1)[0], syscall.EFAULT)

	if err := r.UnregisterBuffers(); err != nil {
		t.Fatal(err)
	}
	sqe(t, r).PrepReadFixed(fd, heap[:4], 0, 1)
	if c := run(t, r, 1)[0]; c.Res >= 0 {
		t.Fatalf("READ_FIXED after UnregisterBuffers succeeded: %+v", c)
	}
}

func TestFsyncAndFallocate(t *testing.T) {
	r := newRing(t, 8)
	_, fd := tempFile(t, "data")
	s := sqe(t, r)
	s.PrepFsync(fd, 0)
	s.SetUserData(1)
	s = sqe(t, r)
	s.PrepFsync(fd, FsyncDatasync)
	s.SetUserData(2)
	s = sqe(t, r)
	s.PrepFallocate(fd, 0, 4096, 1<<16)
	s.SetUserData(3)
	cqes := run(t, r, 3)
	for ud := uint64(1); ud <= 3; ud++ {
		wantRes(t, byUD(t, cqes, ud), 0)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != 4096+1<<16 {
		t.Fatalf("size after fallocate %d, %v", st.Size, err)
	}
	// Bad mode bits are the kernel's to refuse.
	sqe(t, r).PrepFallocate(fd, 0xff, 0, 1)
	if c := run(t, r, 1)[0]; c.Res >= 0 {
		t.Fatalf("fallocate with mode 0xff succeeded")
	}
}

func TestOpenatStatxClose(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 8)
	path, _ := tempFile(t, "twelve bytes")
	p := cstr(t, path)
	sqe(t, r).PrepOpenat(unix.AT_FDCWD, p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	c := run(t, r, 1)[0]
	if c.Res < 0 {
		t.Fatalf("openat: %v", c.Err())
	}
	fd := int(c.Res)

	st := new(unix.Statx_t)
	sqe(t, r).PrepStatx(unix.AT_FDCWD, p, 0, unix.STATX_SIZE|unix.STATX_MODE, st)
	wantRes(t, run(t, r, 1)[0], 0)
	if st.Size != 12 || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mask&unix.STATX_SIZE == 0 {
		t.Fatalf("statx: size %d mode %o mask %#x", st.Size, st.Mode, st.Mask)
	}

	sqe(t, r).PrepOpenat(unix.AT_FDCWD, cstr(t, path+".missing"), unix.O_RDONLY, 0)
	wantErr(t, run(t, r, 1)[0], syscall.ENOENT)

	sqe(t, r).PrepClose(fd)
	wantRes(t, run(t, r, 1)[0], 0)
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("fd %d still open after CLOSE: %v", fd, err)
	}
}

func TestOpenatCloseDirect(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 8)
	path, _ := tempFile(t, "direct")
	if err := r.RegisterFilesSparse(4); err != nil {
		t.Fatal(err)
	}
	p := cstr(t, path)
	sqe(t, r).PrepOpenatDirect(unix.AT_FDCWD, p, unix.O_RDONLY|unix.O_CLOEXEC, 0, 2)
	wantRes(t, run(t, r, 1)[0], 0)
	sqe(t, r).PrepOpenatDirect(unix.AT_FDCWD, p, unix.O_RDONLY, 0, FileIndexAlloc)
	c := run(t, r, 1)[0]
	if c.Res < 0 || c.Res == 2 || c.Res >= 4 {
		t.Fatalf("openat into an allocated slot: Res %d (%v)", c.Res, c.Err())
	}

	buf := make([]byte, 16)
	s := sqe(t, r)
	s.PrepRead(2, buf, 0)
	s.SetFlags(SQEFixedFile)
	wantRes(t, run(t, r, 1)[0], 6)
	if string(buf[:6]) != "direct" {
		t.Fatalf("read from slot 2: %q", buf[:6])
	}

	sqe(t, r).PrepCloseDirect(2)
	wantRes(t, run(t, r, 1)[0], 0)
	s = sqe(t, r)
	s.PrepRead(2, buf, 0)
	s.SetFlags(SQEFixedFile)
	wantErr(t, run(t, r, 1)[0], syscall.EBADF)
}

func TestSplice(t *testing.T) {
	r := newRing(t, 8)
	path, fd := tempFile(t, "")
	rd, wr := pipe(t)

	// pipe -> file
	write(t, wr, "spliced")
	sqe(t, r).PrepSplice(rd, -1, fd, 3, 7, 0)
	wantRes(t, run(t, r, 1)[0], 7)
	if b, _ := os.ReadFile(path); string(b) != "\x00\x00\x00spliced" {
		t.Fatalf("file holds %q", b)
	}
	// file -> pipe
	sqe(t, r).PrepSplice(fd, 5, wr, -1, 4, 0)
	wantRes(t, run(t, r, 1)[0], 4)
	if got := readAll(t, rd, 4); got != "lice" {
		t.Fatalf("pipe got %q", got)
	}
	// Neither end a pipe: EINVAL.
	sqe(t, r).PrepSplice(fd, 0, fd, 100, 4, 0)
	wantErr(t, run(t, r, 1)[0], syscall.EINVAL)
}

func TestInvalidFdGivesEBADF(t *testing.T) {
	r := newRing(t, 4)
	buf := make([]byte, 8)
	s := sqe(t, r)
	s.PrepRead(-1, buf, 0)
	s.SetUserData(7)
	c := run(t, r, 1)[0]
	if c.UserData != 7 || c.Res != -int32(syscall.EBADF) || c.Err() != syscall.EBADF {
		t.Fatalf("read of fd -1: %+v, Err %v", c, c.Err())
	}
	// An fd that was open once and is closed now.
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	sqe(t, r).PrepWrite(fd, buf, -1)
	wantErr(t, run(t, r, 1)[0], syscall.EBADF)
}
