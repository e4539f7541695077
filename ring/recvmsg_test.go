//go:build linux

package ring

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRecvmsgMultishot receives datagrams with one multishot RECVMSG into a
// buffer ring and parses each buffer: the sender's address, the payload,
// and a datagram longer than the buffer's room cut with MSG_TRUNC.
func TestRecvmsgMultishot(t *testing.T) {
	r := newRing(t, 8)
	if !r.Supports(OpRecvmsg) {
		t.Skip("no RECVMSG")
	}
	srv, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, srv)
	if err := unix.Bind(srv, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(srv)
	cli, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, cli)
	if err := unix.Bind(cli, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	csa, _ := unix.Getsockname(cli)
	const size, namelen = 128, unix.SizeofSockaddrInet6
	br, err := r.NewBufRing(5, 4, size)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	msg := &unix.Msghdr{Namelen: namelen}
	s := sqe(t, r)
	s.PrepRecvmsgMultishot(srv, msg, 0, br.Group())
	s.SetUserData(9)
	submit(t, r, 1)
	room := size - SizeofRecvmsgOut - namelen
	sends := [][]byte{[]byte("one"), bytes.Repeat([]byte("x"), room), bytes.Repeat([]byte("y"), room+50)}
	for _, p := range sends {
		if err := unix.Sendto(cli, p, 0, sa); err != nil {
			t.Fatal(err)
		}
	}
	cqes := reap(t, r, len(sends))
	for i, c := range cqes {
		id, ok := c.BufferID()
		if c.Res <= 0 || !ok || !c.More() {
			t.Fatalf("cqe %d: %+v", i, c)
		}
		out, name, control, payload, ok := ParseRecvmsgOut(br.Buf(id)[:c.Res], namelen, 0)
		if !ok {
			t.Fatalf("cqe %d: short buffer", i)
		}
		want := sends[i]
		trunc := len(want) > room
		if int(out.Payloadlen) != len(want) && !(trunc && int(out.Payloadlen) == room) {
			t.Fatalf("cqe %d: payloadlen %d, want %d", i, out.Payloadlen, len(want))
		}
		if got := out.Flags&unix.MSG_TRUNC != 0; got != trunc {
			t.Fatalf("cqe %d: MSG_TRUNC %v, want %v", i, got, trunc)
		}
		if trunc {
			want = want[:room]
		}
		if !bytes.Equal(payload, want) || len(control) != 0 {
			t.Fatalf("cqe %d: payload %d bytes, control %d", i, len(payload), len(control))
		}
		if out.Namelen != unix.SizeofSockaddrInet4 || len(name) != unix.SizeofSockaddrInet4 ||
			binary.NativeEndian.Uint16(name) != unix.AF_INET ||
			int(binary.BigEndian.Uint16(name[2:])) != csa.(*unix.SockaddrInet4).Port {
			t.Fatalf("cqe %d: name %x", i, name)
		}
	}
	if _, _, _, _, ok := ParseRecvmsgOut(make([]byte, 20), namelen, 0); ok {
		t.Fatal("a short buffer parsed")
	}
}
