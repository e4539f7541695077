//go:build linux

package ring

import (
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Timeouts, cancellation, links, MSG_RING, SQE flags and CQE flag decoders.

func TestTimeoutFires(t *testing.T) {
	r := newRing(t, 4)
	ts := &unix.Timespec{Nsec: int64(20 * time.Millisecond)}
	s := sqe(t, r)
	s.PrepTimeout(ts, 0, 0)
	s.SetUserData(1)
	start := time.Now()
	c := run(t, r, 1)[0]
	wantErr(t, c, syscall.ETIME)
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Fatalf("timeout fired after %v", el)
	}
}

func TestTimeoutCount(t *testing.T) {
	r := newRing(t, 8)
	ts := &unix.Timespec{Sec: 10}
	s := sqe(t, r)
	s.PrepTimeout(ts, 2, 0)
	s.SetUserData(1)
	for ud := uint64(2); ud <= 3; ud++ {
		s = sqe(t, r)
		s.PrepNop()
		s.SetUserData(ud)
	}
	start := time.Now()
	cqes := run(t, r, 3)
	wantRes(t, byUD(t, cqes, 1), 0) // satisfied by count, not time
	if time.Since(start) > 5*time.Second {
		t.Fatal("count-based timeout waited for its time")
	}
}

func TestTimeoutRemove(t *testing.T) {
	r := newRing(t, 4)
	ts := &unix.Timespec{Sec: 10}
	s := sqe(t, r)
	s.PrepTimeout(ts, 0, 0)
	s.SetUserData(1)
	submit(t, r, 1)
	s = sqe(t, r)
	s.PrepTimeoutRemove(1, 0)
	s.SetUserData(2)
	cqes := run(t, r, 2)
	wantRes(t, byUD(t, cqes, 2), 0)
	wantErr(t, byUD(t, cqes, 1), syscall.ECANCELED)
	sqe(t, r).PrepTimeoutRemove(1, 0)
	wantErr(t, run(t, r, 1)[0], syscall.ENOENT)
}

func TestLinkTimeout(t *testing.T) {
	r := newRing(t, 4)
	rd, _ := pipe(t)
	buf := make([]byte, 8)
	s := sqe(t, r)
	s.PrepRead(rd, buf, -1) // the pipe stays empty
	s.SetUserData(1)
	s.SetFlags(SQEIOLink)
	ts := &unix.Timespec{Nsec: int64(10 * time.Millisecond)}
	s = sqe(t, r)
	s.PrepLinkTimeout(ts, 0)
	s.SetUserData(2)
	cqes := run(t, r, 2)
	wantErr(t, byUD(t, cqes, 1), syscall.ECANCELED)
	wantErr(t, byUD(t, cqes, 2), syscall.ETIME)
}

func TestCancelByUserData(t *testing.T) {
	r := newRing(t, 4)
	rd, _ := pipe(t)
	buf := make([]byte, 8)
	s := sqe(t, r)
	s.PrepRead(rd, buf, -1)
	s.SetUserData(10)
	submit(t, r, 1)
	s = sqe(t, r)
	s.PrepCancel(10, 0)
	s.SetUserData(11)
	cqes := run(t, r, 2)
	wantRes(t, byUD(t, cqes, 11), 0)
	wantErr(t, byUD(t, cqes, 10), syscall.ECANCELED)
	sqe(t, r).PrepCancel(10, 0)
	wantErr(t, run(t, r, 1)[0], syscall.ENOENT)
}

func TestCancelByFd(t *testing.T) {
	r := newRing(t, 8)
	rd, _ := pipe(t)
	other, _ := pipe(t)
	buf := make([]byte, 8)
	for ud := uint64(1); ud <= 3; ud++ {
		fd := rd
		if ud == 3 {
			fd = other
		}
		s := sqe(t, r)
		s.PrepRead(fd, buf, -1)
		s.SetUserData(ud)
	}
	submit(t, r, 3)
	s := sqe(t, r)
	s.PrepCancelFd(rd, CancelAll)
	s.SetUserData(9)
	cqes := run(t, r, 3)
	wantRes(t, byUD(t, cqes, 9), 2) // with CancelAll: how many were cancelled
	wantErr(t, byUD(t, cqes, 1), syscall.ECANCELED)
	wantErr(t, byUD(t, cqes, 2), syscall.ECANCELED)
	noCQE(t, r, 10*time.Millisecond) // the read of the other pipe goes on

	sqe(t, r).PrepCancelAny()
	cqes = run(t, r, 2)
	wantErr(t, byUD(t, cqes, 3), syscall.ECANCELED)
}

func TestCancelAny(t *testing.T) {
	r := newRing(t, 8)
	buf := make([]byte, 8)
	for ud := uint64(1); ud <= 3; ud++ {
		rd, _ := pipe(t)
		s := sqe(t, r)
		s.PrepRead(rd, buf, -1)
		s.SetUserData(ud)
	}
	ts := &unix.Timespec{Sec: 10}
	s := sqe(t, r)
	s.PrepTimeout(ts, 0, 0)
	s.SetUserData(4)
	submit(t, r, 4)
	s = sqe(t, r)
	s.PrepCancelAny()
	s.SetUserData(99)
	cqes := run(t, r, 5)
	wantRes(t, byUD(t, cqes, 99), 4)
	for ud := uint64(1); ud <= 4; ud++ {
		wantErr(t, byUD(t, cqes, ud), syscall.ECANCELED)
	}
	sqe(t, r).PrepCancelAny()
	wantRes(t, run(t, r, 1)[0], 0) // nothing left: a count of 0
}

func TestMsgRing(t *testing.T) {
	a, b := newRing(t, 4), newRing(t, 4)
	if !a.Supports(OpMsgRing) {
		t.Skip("kernel lacks MSG_RING")
	}
	s := sqe(t, a)
	s.PrepMsgRing(b.Fd(), 1234, 0xabcdef, 0)
	s.SetUserData(1)
	wantRes(t, run(t, a, 1)[0], 0)
	c := reap(t, b, 1)[0]
	if c.UserData != 0xabcdef || c.Res != 1234 {
		t.Fatalf("ring b got %+v", c)
	}
	// Skipping the sender's CQE.
	s = sqe(t, a)
	s.PrepMsgRing(b.Fd(), 5, 6, 0)
	s.SetFlags(SQECQESkipSuccess)
	submit(t, a, 1)
	if c := reap(t, b, 1)[0]; c.UserData != 6 || c.Res != 5 {
		t.Fatalf("ring b got %+v", c)
	}
	noCQE(t, a, 10*time.Millisecond)
	// To something that is not a ring.
	rd, _ := pipe(t)
	sqe(t, a).PrepMsgRing(rd, 0, 0, 0)
	wantErr(t, run(t, a, 1)[0], syscall.EBADFD)
}

func TestLinkChain(t *testing.T) {
	r := newRing(t, 8)
	rd, wr := pipe(t)
	out, in := []byte("linked"), make([]byte, 16)
	s := sqe(t, r)
	s.PrepWrite(wr, out, -1)
	s.SetFlags(SQEIOLink)
	s.SetUserData(1)
	s = sqe(t, r)
	s.PrepRead(rd, in, -1)
	s.SetUserData(2)
	cqes := run(t, r, 2)
	if cqes[0].UserData != 1 || cqes[1].UserData != 2 {
		t.Fatalf("linked CQEs out of order: %+v", cqes)
	}
	wantRes(t, cqes[1], 6)

	// A failed link cancels the rest of the chain.
	s = sqe(t, r)
	s.PrepRead(-1, in, 0)
	s.SetFlags(SQEIOLink)
	s.SetUserData(3)
	s = sqe(t, r)
	s.PrepNop()
	s.SetUserData(4)
	cqes = run(t, r, 2)
	wantErr(t, byUD(t, cqes, 3), syscall.EBADF)
	wantErr(t, byUD(t, cqes, 4), syscall.ECANCELED)

	// A hard link does not.
	s = sqe(t, r)
	s.PrepRead(-1, in, 0)
	s.SetFlags(SQEIOHardlink)
	s.SetUserData(5)
	s = sqe(t, r)
	s.PrepNop()
	s.SetUserData(6)
	cqes = run(t, r, 2)
	wantErr(t, byUD(t, cqes, 5), syscall.EBADF)
	wantRes(t, byUD(t, cqes, 6), 0)
}

func TestDrain(t *testing.T) {
	for _, drain := range []bool{false, true} {
		r := newRing(t, 4)
		ts := &unix.Timespec{Nsec: int64(20 * time.Millisecond)}
		s := sqe(t, r)
		s.PrepTimeout(ts, 0, 0)
		s.SetUserData(1)
		s = sqe(t, r)
		s.PrepNop()
		s.SetUserData(2)
		if drain {
			s.SetFlags(SQEIODrain)
		}
		cqes := run(t, r, 2)
		first := uint64(2) // a NOP completes at once...
		if drain {
			first = 1 // ...unless it waits for what came before
		}
		if cqes[0].UserData != first {
			t.Fatalf("drain %v: completion order %+v", drain, cqes)
		}
	}
}

func TestAsyncFlag(t *testing.T) {
	r := newRing(t, 4)
	rd, wr := pipe(t)
	write(t, wr, "async")
	buf := make([]byte, 8)
	s := sqe(t, r)
	s.PrepRead(rd, buf, -1)
	s.SetFlags(SQEAsync) // straight to an io-wq worker
	wantRes(t, run(t, r, 1)[0], 5)
	s = sqe(t, r)
	s.PrepNop()
	s.SetFlags(SQEAsync)
	wantRes(t, run(t, r, 1)[0], 0)
	if string(buf[:5]) != "async" {
		t.Fatalf("read %q", buf[:5])
	}
}

func TestCQESkipSuccess(t *testing.T) {
	r := newRing(t, 8)
	if !r.HasFeature(FeatCQESkip) {
		t.Skip("kernel lacks CQE skip")
	}
	buf := make([]byte, 4)
	s := sqe(t, r)
	s.PrepNop()
	s.SetFlags(SQECQESkipSuccess)
	s.SetUserData(1)
	s = sqe(t, r)
	s.PrepRead(-1, buf, 0) // a skipped failure still posts
	s.SetFlags(SQECQESkipSuccess)
	s.SetUserData(2)
	s = sqe(t, r)
	s.PrepNop()
	s.SetUserData(3)
	submit(t, r, 3)
	cqes := reap(t, r, 2)
	wantErr(t, byUD(t, cqes, 2), syscall.EBADF)
	wantRes(t, byUD(t, cqes, 3), 0)
	noCQE(t, r, 10*time.Millisecond) // and none for user data 1
}

func TestCQEFlagDecoders(t *testing.T) {
	c := CQE{Res: -int32(syscall.ENOENT), Flags: CQEFBuffer | CQEFMore | 513<<16}
	if id, ok := c.BufferID(); !ok || id != 513 {
		t.Errorf("BufferID = %d, %v", id, ok)
	}
	if !c.More() || c.SockNonempty() || c.Notification() || c.BufferMore() {
		t.Errorf("flags %#x decoded wrong", c.Flags)
	}
	if c.Err() != syscall.ENOENT {
		t.Errorf("Err = %v", c.Err())
	}
	c = CQE{Res: 3, Flags: CQEFSockNonempty | CQEFNotif | CQEFBufMore | 7<<16}
	if _, ok := c.BufferID(); ok {
		t.Errorf("BufferID ok without CQEFBuffer")
	}
	if c.More() || !c.SockNonempty() || !c.Notification() || !c.BufferMore() || c.Err() != nil {
		t.Errorf("flags %#x decoded wrong", c.Flags)
	}
}

func TestBufRingIncremental(t *testing.T) {
	r := newRing(t, 8)
	br, err := r.NewBufRing(2, 1, 64, Incremental())
	if err != nil {
		t.Skipf("incremental buffer rings not supported: %v", err)
	}
	defer br.Close()
	if !br.Incremental() {
		t.Fatal("Incremental() false")
	}
	client, server := tcpPair(t)
	base := &br.Buf(0)[0]
	for i, msg := range []string{"0123456789", "abcdefghij"} {
		write(t, client, msg)
		s := sqe(t, r)
		s.PrepRecv(server, nil, 0)
		s.SetBufferGroup(br.Group())
		c := run(t, r, 1)[0]
		id, ok := c.BufferID()
		if c.Res != 10 || !ok || id != 0 || !c.BufferMore() {
			t.Fatalf("recv %d: CQE %+v (%v): want 10 bytes in buffer 0 with BufferMore", i, c, c.Err())
		}
		// Each receive lands after the previous one in the same buffer.
		if got := string(br.Buf(0)[i*10 : i*10+10]); got != msg {
			t.Fatalf("recv %d: buffer holds %q at %d", i, got, i*10)
		}
	}
	if base != &br.Buf(0)[0] {
		t.Fatal("Buf moved")
	}
}
