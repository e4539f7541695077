//go:build linux

package ring

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Tests of the socket prep helpers over loopback TCP.

func TestSendRecv(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 8)
	client, server := tcpPair(t)
	out := []byte("ping over io_uring")
	in := make([]byte, 64)
	s := sqe(t, r)
	s.PrepRecv(server, in, 0)
	s.SetUserData(2)
	s = sqe(t, r)
	s.PrepSend(client, out, unix.MSG_NOSIGNAL)
	s.SetUserData(1)
	cqes := run(t, r, 2)
	wantRes(t, byUD(t, cqes, 1), int32(len(out)))
	wantRes(t, byUD(t, cqes, 2), int32(len(out)))
	if string(in[:len(out)]) != string(out) {
		t.Fatalf("recv got %q", in[:len(out)])
	}
}

func TestRecvSockNonempty(t *testing.T) {
	r := newRing(t, 4)
	client, server := tcpPair(t)
	write(t, client, "0123456789abcdef")
	time.Sleep(10 * time.Millisecond) // let loopback deliver all of it
	in := make([]byte, 10)
	sqe(t, r).PrepRecv(server, in, 0)
	c := run(t, r, 1)[0]
	wantRes(t, c, 10)
	if !c.SockNonempty() {
		t.Errorf("recv of 10 of 16 bytes: SockNonempty false (flags %#x)", c.Flags)
	}
	sqe(t, r).PrepRecv(server, in, 0)
	c = run(t, r, 1)[0]
	wantRes(t, c, 6)
	if c.SockNonempty() {
		t.Errorf("recv of the last 6 bytes: SockNonempty true")
	}
}

func TestSendmsgRecvmsg(t *testing.T) {
	r := newRing(t, 8)
	client, server := tcpPair(t)
	a, b := []byte("scatter/"), []byte("gather")
	siov := make([]unix.Iovec, 2)
	siov[0].Base, siov[1].Base = &a[0], &b[0]
	siov[0].SetLen(len(a))
	siov[1].SetLen(len(b))
	smsg := &unix.Msghdr{Iov: &siov[0]}
	smsg.SetIovlen(2)
	sqe(t, r).PrepSendmsg(client, smsg, unix.MSG_NOSIGNAL)
	wantRes(t, run(t, r, 1)[0], 14)

	x, y := make([]byte, 4), make([]byte, 32)
	riov := make([]unix.Iovec, 2)
	riov[0].Base, riov[1].Base = &x[0], &y[0]
	riov[0].SetLen(len(x))
	riov[1].SetLen(len(y))
	rmsg := &unix.Msghdr{Iov: &riov[0]}
	rmsg.SetIovlen(2)
	sqe(t, r).PrepRecvmsg(server, rmsg, 0)
	wantRes(t, run(t, r, 1)[0], 14)
	if string(x)+string(y[:10]) != "scatter/gather" {
		t.Fatalf("recvmsg got %q %q", x, y[:10])
	}
}

func TestSendZC(t *testing.T) {
	r := newRing(t, 8)
	if !r.Supports(OpSendZC) {
		t.Skip("kernel lacks SEND_ZC")
	}
	client, server := tcpPair(t)
	out := []byte("zero copy, two completions")
	s := sqe(t, r)
	s.PrepSendZC(client, out, unix.MSG_NOSIGNAL, 0)
	s.SetUserData(9)
	cqes := run(t, r, 2)
	res, notif := cqes[0], cqes[1]
	if res.UserData != 9 || notif.UserData != 9 {
		t.Fatalf("user data: %+v", cqes)
	}
	if res.Res != int32(len(out)) || !res.More() || res.Notification() {
		t.Fatalf("result CQE %+v: want Res %d, More, not Notification", res, len(out))
	}
	if !notif.Notification() || notif.More() {
		t.Fatalf("notification CQE %+v: want Notification, not More", notif)
	}
	if got := readAll(t, server, len(out)); got != string(out) {
		t.Fatalf("peer got %q", got)
	}
}

func TestAccept(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 4)
	ln, port := listen(t)
	client := dial(t, port)
	addr := new(unix.RawSockaddrAny)
	addrLen := new(uint32)
	*addrLen = uint32(unsafe.Sizeof(*addr))
	sqe(t, r).PrepAccept(ln, addr, addrLen, unix.SOCK_CLOEXEC)
	c := run(t, r, 1)[0]
	if c.Res < 0 {
		t.Fatalf("accept: %v", c.Err())
	}
	conn := int(c.Res)
	defer unix.Close(conn)
	local, err := unix.Getsockname(client)
	if err != nil {
		t.Fatal(err)
	}
	in := (*unix.RawSockaddrInet4)(unsafe.Pointer(addr))
	peerPort := int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&in.Port))[:]))
	if in.Family != unix.AF_INET || peerPort != local.(*unix.SockaddrInet4).Port || *addrLen != unix.SizeofSockaddrInet4 {
		t.Fatalf("accept address family %d port %d len %d; client is %+v", in.Family, peerPort, *addrLen, local)
	}
	write(t, client, "hi")
	if got := readAll(t, conn, 2); got != "hi" {
		t.Fatalf("accepted conn read %q", got)
	}
}

func TestAcceptMultishot(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 4)
	ln, port := listen(t)
	s := sqe(t, r)
	s.PrepAcceptMultishot(ln, unix.SOCK_CLOEXEC)
	s.SetUserData(5)
	submit(t, r, 1)
	const conns = 4
	for i := 0; i < conns; i++ {
		dial(t, port)
	}
	for _, c := range reap(t, r, conns) {
		if c.UserData != 5 || c.Res < 0 || !c.More() {
			t.Fatalf("multishot accept CQE %+v (%v)", c, c.Err())
		}
		unix.Close(int(c.Res))
	}
	// Cancel it: its final CQE comes without More.
	s = sqe(t, r)
	s.PrepCancel(5, 0)
	s.SetUserData(6)
	cqes := run(t, r, 2)
	wantRes(t, byUD(t, cqes, 6), 0)
	last := byUD(t, cqes, 5)
	wantErr(t, last, syscall.ECANCELED)
	if last.More() {
		t.Fatalf("final multishot CQE has More")
	}
}

func TestAcceptDirect(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 8)
	if err := r.RegisterFilesSparse(8); err != nil {
		t.Fatal(err)
	}
	ln, port := listen(t)
	client := dial(t, port)
	sqe(t, r).PrepAcceptDirect(ln, nil, nil, unix.SOCK_CLOEXEC, 3)
	wantRes(t, run(t, r, 1)[0], 0) // explicit slot: Res 0

	dial(t, port)
	sqe(t, r).PrepAcceptDirect(ln, nil, nil, 0, FileIndexAlloc)
	c := run(t, r, 1)[0]
	if c.Res < 0 || c.Res == 3 {
		t.Fatalf("accept into an allocated slot: Res %d (%v)", c.Res, c.Err())
	}

	// Multishot accept can install into allocated slots too.
	s := sqe(t, r)
	s.PrepAcceptMultishot(ln, 0)
	s.SetFileIndex(FileIndexAlloc)
	s.SetUserData(1)
	submit(t, r, 1)
	dial(t, port)
	dial(t, port)
	slots := map[int32]bool{c.Res: true, 3: true}
	for _, c := range reap(t, r, 2) {
		if c.Res < 0 || !c.More() || slots[c.Res] {
			t.Fatalf("multishot direct accept %+v (%v), slots in use %v", c, c.Err(), slots)
		}
		slots[c.Res] = true
	}

	// The connection in slot 3 works through SQEFixedFile.
	out := []byte("via fixed file")
	s = sqe(t, r)
	s.PrepSend(3, out, unix.MSG_NOSIGNAL)
	s.SetFlags(SQEFixedFile)
	s.SetUserData(2)
	wantRes(t, run(t, r, 1)[0], int32(len(out)))
	if got := readAll(t, client, len(out)); got != string(out) {
		t.Fatalf("client got %q", got)
	}
	sqe(t, r).PrepCancel(1, 0)
	run(t, r, 2)
}

func TestConnectSocketShutdown(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 8)
	ln, port := listen(t)

	sqe(t, r).PrepSocket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0, 0)
	c := run(t, r, 1)[0]
	if c.Res < 0 {
		t.Fatalf("socket: %v", c.Err())
	}
	fd := int(c.Res)
	defer unix.Close(fd)
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
		t.Fatalf("SO_TYPE %d, %v", typ, err)
	}

	sa := sockaddr4(port)
	sqe(t, r).PrepConnect(fd, unsafe.Pointer(sa), unix.SizeofSockaddrInet4)
	wantRes(t, run(t, r, 1)[0], 0)
	conn, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(conn)

	sqe(t, r).PrepShutdown(fd, unix.SHUT_WR)
	wantRes(t, run(t, r, 1)[0], 0)
	if n, err := unix.Read(conn, make([]byte, 4)); n != 0 || err != nil {
		t.Fatalf("peer read after SHUT_WR: %d, %v; want EOF", n, err)
	}

	// Connecting to a port nobody listens on is refused.
	unix.Close(ln)
	sqe(t, r).PrepSocket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0, 0)
	fd2 := int(run(t, r, 1)[0].Res)
	defer unix.Close(fd2)
	sqe(t, r).PrepConnect(fd2, unsafe.Pointer(sa), unix.SizeofSockaddrInet4)
	wantErr(t, run(t, r, 1)[0], syscall.ECONNREFUSED)
}

func TestSocketDirect(t *testing.T) {
	r := newRing(t, 4)
	if err := r.RegisterFilesSparse(2); err != nil {
		t.Fatal(err)
	}
	s := sqe(t, r)
	s.PrepSocket(unix.AF_INET, unix.SOCK_DGRAM, 0, 0)
	s.SetFileIndex(1)
	wantRes(t, run(t, r, 1)[0], 0)
	s = sqe(t, r)
	s.PrepSocket(unix.AF_INET, unix.SOCK_DGRAM, 0, 0)
	s.SetFileIndex(FileIndexAlloc)
	wantRes(t, run(t, r, 1)[0], 0) // the one free slot
	s = sqe(t, r)
	s.PrepSocket(unix.AF_INET, unix.SOCK_DGRAM, 0, 0)
	s.SetFileIndex(FileIndexAlloc)
	wantErr(t, run(t, r, 1)[0], syscall.ENFILE)
}

func TestRecvMultishotBufRing(t *testing.T) {
	checkFDLeak(t)
	r := newRing(t, 8)
	client, server := tcpPair(t)
	br, err := r.NewBufRing(7, 4, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	s := sqe(t, r)
	s.PrepRecvMultishot(server, 0, br.Group())
	s.SetUserData(77)
	submit(t, r, 1)

	// More messages than buffers: only Recycle keeps it going.
	const msgs = 10
	for i := 0; i < msgs; i++ {
		msg := fmt.Sprintf("message %d", i)
		write(t, client, msg)
		c := reap(t, r, 1)[0]
		id, ok := c.BufferID()
		if c.UserData != 77 || !c.More() || !ok || c.Res != int32(len(msg)) {
			t.Fatalf("message %d: CQE %+v (%v), buffer %d %v", i, c, c.Err(), id, ok)
		}
		if want := uint16(i % 4); id != want {
			t.Fatalf("message %d in buffer %d, want %d", i, id, want)
		}
		if got := string(br.Buf(id)[:c.Res]); got != msg {
			t.Fatalf("buffer %d holds %q, want %q", id, got, msg)
		}
		br.Recycle(id)
	}
	// The peer closes: a final CQE with Res 0 and no More.
	unix.Shutdown(client, unix.SHUT_WR)
	c := reap(t, r, 1)[0]
	if c.UserData != 77 || c.Res != 0 || c.More() {
		t.Fatalf("final CQE %+v", c)
	}
}

func TestRecvMultishotBufRingExhausted(t *testing.T) {
	r := newRing(t, 8)
	client, server := tcpPair(t)
	br, err := r.NewBufRing(1, 2, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	s := sqe(t, r)
	s.PrepRecvMultishot(server, 0, br.Group())
	submit(t, r, 1)
	for i := 0; i < 2; i++ {
		write(t, client, "x")
		if c := reap(t, r, 1)[0]; c.Res != 1 || !c.More() {
			t.Fatalf("CQE %+v", c)
		}
	}
	// Nothing recycled: the third message finds no buffer, and the request ends.
	write(t, client, "y")
	c := reap(t, r, 1)[0]
	wantErr(t, c, syscall.ENOBUFS)
	if c.More() {
		t.Fatalf("CQE after ENOBUFS has More")
	}
}

func TestProvideBuffers(t *testing.T) {
	r := newRing(t, 8)
	client, server := tcpPair(t)
	mem := make([]byte, 4*32)
	s := sqe(t, r)
	s.PrepProvideBuffers(mem, 32, 4, 3, 100)
	if c := run(t, r, 1)[0]; c.Res < 0 {
		t.Fatalf("provide buffers: %v", c.Err())
	}
	for i, msg := range []string{"first", "second"} {
		write(t, client, msg)
		s = sqe(t, r)
		s.PrepRecv(server, nil, 0)
		s.SetBufferGroup(3)
		c := run(t, r, 1)[0]
		id, ok := c.BufferID()
		if c.Res != int32(len(msg)) || !ok || id != uint16(100+i) {
			t.Fatalf("recv %d: CQE %+v (%v) buffer %d %v", i, c, c.Err(), id, ok)
		}
		off := int(id-100) * 32
		if got := string(mem[off : off+int(c.Res)]); got != msg {
			t.Fatalf("buffer %d holds %q", id, got)
		}
	}
	// Group 4 has no buffers.
	write(t, client, "z")
	s = sqe(t, r)
	s.PrepRecv(server, nil, 0)
	s.SetBufferGroup(4)
	wantErr(t, run(t, r, 1)[0], syscall.ENOBUFS)
}

func TestPollAdd(t *testing.T) {
	r := newRing(t, 4)
	rd, wr := pipe(t)
	s := sqe(t, r)
	s.PrepPollAdd(rd, unix.POLLIN)
	s.SetUserData(1)
	submit(t, r, 1)
	noCQE(t, r, 10*time.Millisecond)
	write(t, wr, "x")
	c := reap(t, r, 1)[0]
	if c.Res&unix.POLLIN == 0 || c.More() {
		t.Fatalf("poll CQE %+v", c)
	}
	// Writable right away.
	sqe(t, r).PrepPollAdd(wr, unix.POLLOUT)
	if c := run(t, r, 1)[0]; c.Res&unix.POLLOUT == 0 {
		t.Fatalf("POLLOUT CQE %+v", c)
	}
}

func TestPollMultishotAndRemove(t *testing.T) {
	r := newRing(t, 4)
	rd, wr := pipe(t)
	s := sqe(t, r)
	s.PrepPollMultishot(rd, unix.POLLIN)
	s.SetUserData(1)
	submit(t, r, 1)
	for i := 0; i < 3; i++ {
		write(t, wr, "x")
		c := reap(t, r, 1)[0]
		if c.UserData != 1 || c.Res&unix.POLLIN == 0 || !c.More() {
			t.Fatalf("multishot poll CQE %d: %+v", i, c)
		}
	}
	s = sqe(t, r)
	s.PrepPollRemove(1)
	s.SetUserData(2)
	cqes := run(t, r, 2)
	wantRes(t, byUD(t, cqes, 2), 0)
	last := byUD(t, cqes, 1)
	wantErr(t, last, syscall.ECANCELED)
	if last.More() {
		t.Fatalf("removed poll's last CQE has More")
	}
	// Removing it again: not found.
	sqe(t, r).PrepPollRemove(1)
	wantErr(t, run(t, r, 1)[0], syscall.ENOENT)
}
