//go:build linux

package ring

import (
	"encoding/binary"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readFixed reads from registered file slot idx.
func readFixed(t *testing.T, r *Ring, idx int, buf []byte) CQE {
	t.Helper()
	s := sqe(t, r)
	s.PrepRead(idx, buf, -1)
	s.SetFlags(SQEFixedFile)
	return run(t, r, 1)[0]
}

func TestRegisterFiles(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 4)
	rdA, wrA := pipe(t)
	rdB, wrB := pipe(t)
	dupB, err := unix.Dup(rdB)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterFiles([]int32{int32(rdA), int32(dupB)}); err != nil {
		t.Fatal(err)
	}
	unix.Close(dupB) // the table holds its own reference
	write(t, wrA, "A")
	write(t, wrB, "B")
	buf := make([]byte, 4)
	if c := readFixed(t, r, 1, buf); c.Res != 1 || buf[0] != 'B' {
		t.Fatalf("slot 1: %+v %q", c, buf[:1])
	}
	if c := readFixed(t, r, 0, buf); c.Res != 1 || buf[0] != 'A' {
		t.Fatalf("slot 0: %+v %q", c, buf[:1])
	}
	// A second table while one is registered: EBUSY.
	if err := r.RegisterFiles([]int32{int32(rdA)}); err == nil {
		t.Fatal("registering files twice succeeded")
	}
	if err := r.UnregisterFiles(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, readFixed(t, r, 0, buf), syscall.EBADF)
	if err := r.RegisterFiles(nil); err == nil {
		t.Fatal("RegisterFiles(nil) succeeded")
	}
}

func TestRegisterFilesSparseUpdate(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 4)
	if err := r.RegisterFilesSparse(4); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	wantErr(t, readFixed(t, r, 2, buf), syscall.EBADF) // empty slot
	rd, wr := pipe(t)
	n, err := r.RegisterFilesUpdate(2, []int32{int32(rd)})
	if err != nil || n != 1 {
		t.Fatalf("RegisterFilesUpdate = %d, %v", n, err)
	}
	write(t, wr, "up")
	if c := readFixed(t, r, 2, buf); c.Res != 2 || string(buf[:2]) != "up" {
		t.Fatalf("slot 2 after update: %+v", c)
	}
	if n, err := r.RegisterFilesUpdate(2, []int32{-1}); err != nil || n != 1 {
		t.Fatalf("emptying slot 2 = %d, %v", n, err)
	}
	wantErr(t, readFixed(t, r, 2, buf), syscall.EBADF)
	if _, err := r.RegisterFilesUpdate(4, []int32{int32(rd)}); err == nil {
		t.Fatal("update past the table succeeded")
	}
	if n, err := r.RegisterFilesUpdate(0, nil); n != 0 || err != nil {
		t.Fatalf("empty update = %d, %v", n, err)
	}
}

func TestRegisterFileAllocRange(t *testing.T) {
	r := newRing(t, 4)
	if err := r.RegisterFilesSparse(8); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterFileAllocRange(5, 2); err != nil {
		t.Fatal(err)
	}
	path, _ := tempFile(t, "x")
	p := cstr(t, path)
	var got []int32
	for i := 0; i < 3; i++ {
		sqe(t, r).PrepOpenatDirect(unix.AT_FDCWD, p, unix.O_RDONLY, 0, FileIndexAlloc)
		got = append(got, run(t, r, 1)[0].Res)
	}
	if got[0] != 5 || got[1] != 6 || got[2] != -int32(syscall.ENFILE) {
		t.Fatalf("allocated %v, want [5 6 -ENFILE]", got)
	}
	if err := r.RegisterFileAllocRange(6, 4); err == nil {
		t.Fatal("alloc range past the table accepted")
	}
}

func TestRegisterRingFd(t *testing.T) {
	onLockedThread(t, func() {
		r, err := New(4)
		if err != nil {
			t.Error(err)
			return
		}
		if err := r.RegisterRingFd(); err != nil {
			t.Errorf("RegisterRingFd: %v", err)
			r.Close()
			return
		}
		idx := r.enterFd
		if r.enterFlags&enterRegisteredRing == 0 || idx == r.fd {
			t.Errorf("enter goes through fd %d, flags %#x", r.enterFd, r.enterFlags)
		}
		if err := r.RegisterRingFd(); err != nil || r.enterFd != idx {
			t.Errorf("second RegisterRingFd: %v, index %d -> %d", err, idx, r.enterFd)
		}
		for i := uint64(0); i < 10; i++ {
			if err := nopRoundTrip(r, i+1); err != nil {
				t.Errorf("NOP through the registered ring fd: %v", err)
			}
		}
		if _, err := r.WaitCQETimeout(time.Millisecond); err != syscall.ETIME {
			t.Errorf("timed wait through the registered ring fd: %v", err)
		}
		// Close unregisters: a new ring on this thread gets the same index.
		r.Close()
		r2, err := New(4)
		if err != nil {
			t.Error(err)
			return
		}
		defer r2.Close()
		if err := r2.RegisterRingFd(); err != nil || r2.enterFd != idx {
			t.Errorf("after Close, RegisterRingFd gave index %d (%v), want %d again", r2.enterFd, err, idx)
		}
		if err := r2.UnregisterRingFd(); err != nil || r2.enterFd != r2.fd || r2.enterFlags != 0 {
			t.Errorf("UnregisterRingFd: %v, enterFd %d", err, r2.enterFd)
		}
		if err := nopRoundTrip(r2, 1); err != nil {
			t.Errorf("NOP after UnregisterRingFd: %v", err)
		}
	})
}

func TestRegisterEventfd(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 4)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	count := func() uint64 {
		var b [8]byte
		if _, err := unix.Read(efd, b[:]); err == unix.EAGAIN {
			return 0
		} else if err != nil {
			t.Fatal(err)
		}
		return binary.NativeEndian.Uint64(b[:])
	}
	if err := r.RegisterEventfd(efd, false); err != nil {
		t.Fatal(err)
	}
	if count() != 0 {
		t.Fatal("eventfd readable before any completion")
	}
	sqe(t, r).PrepNop()
	run(t, r, 1)
	if n := count(); n != 1 {
		t.Fatalf("eventfd counted %d completions, want 1", n)
	}
	if err := r.UnregisterEventfd(); err != nil {
		t.Fatal(err)
	}
	sqe(t, r).PrepNop()
	run(t, r, 1)
	if n := count(); n != 0 {
		t.Fatalf("eventfd signalled after UnregisterEventfd: %d", n)
	}

	// Async: only completions posted by an io-wq worker signal it.
	if err := r.RegisterEventfd(efd, true); err != nil {
		t.Fatal(err)
	}
	sqe(t, r).PrepNop() // completes inline
	run(t, r, 1)
	if n := count(); n != 0 {
		t.Fatalf("async eventfd signalled by an inline NOP: %d", n)
	}
	s := sqe(t, r)
	s.PrepNop()
	s.SetFlags(SQEAsync) // completes in a worker
	run(t, r, 1)
	if n := count(); n != 1 {
		t.Fatalf("async eventfd counted %d for a worker's completion, want 1", n)
	}
}

func TestSupports(t *testing.T) {
	r := newRing(t, 4)
	for _, op := range []Op{OpNop, OpRead, OpWrite, OpReadv, OpSend, OpRecv, OpAccept, OpTimeout, OpMsgRing, OpSocket, OpSendZC, OpListen} {
		if !r.Supports(op) {
			t.Errorf("Supports(%d) false on Linux 6.18", op)
		}
	}
	if r.Supports(Op(250)) || r.Supports(Op(255)) {
		t.Error("Supports(250 or 255) true")
	}
}
