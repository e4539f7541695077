//go:build linux

package ring

import (
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNewBufRingArgs(t *testing.T) {
	r := newRing(t, 4)
	for _, a := range []struct {
		count uint32
		size  int
	}{{0, 64}, {3, 64}, {1 << 16, 64}, {4, 0}, {4, -1}} {
		if br, err := r.NewBufRing(1, a.count, a.size); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("NewBufRing(count %d, size %d) = %v, %v; want EINVAL", a.count, a.size, br, err)
		}
	}
	br, err := r.NewBufRing(9, 8, 100)
	if err != nil {
		t.Fatal(err)
	}
	if br.Group() != 9 || br.Count() != 8 || br.Size() != 100 || br.Incremental() || len(br.Buf(7)) != 100 || cap(br.Buf(0)) != 100 {
		t.Fatalf("BufRing group %d count %d size %d", br.Group(), br.Count(), br.Size())
	}
	if _, err := r.NewBufRing(9, 8, 100); err == nil {
		t.Fatal("a second buffer ring for group 9 was accepted")
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	br, err = r.NewBufRing(9, 8, 100) // the group is free again
	if err != nil {
		t.Fatal(err)
	}
	br.Close()
}

// TestBufRingAddAdvance drains a buffer ring with single receives, then hands
// the buffers back in one batch with Add and Advance.
func TestBufRingAddAdvance(t *testing.T) {
	r := newRing(t, 8)
	client, server := tcpPair(t)
	br, err := r.NewBufRing(4, 4, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	recv := func() CQE {
		s := sqe(t, r)
		s.PrepRecv(server, nil, 0)
		s.SetBufferGroup(br.Group())
		return run(t, r, 1)[0]
	}
	var used []uint16
	for i := 0; i < 4; i++ {
		write(t, client, "m")
		c := recv()
		id, ok := c.BufferID()
		if c.Res != 1 || !ok {
			t.Fatalf("recv %d: %+v", i, c)
		}
		used = append(used, id)
	}
	write(t, client, "n")
	wantErr(t, recv(), syscall.ENOBUFS)
	for i, id := range used {
		br.Add(id, i)
	}
	br.Advance(len(used))
	c := recv()
	if id, ok := c.BufferID(); c.Res != 1 || !ok || id != used[0] || br.Buf(id)[0] != 'n' {
		t.Fatalf("recv after Advance: %+v", c)
	}
}

func TestRegisterBuffersArgs(t *testing.T) {
	r := newRing(t, 4)
	if err := r.RegisterBuffers(nil); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("RegisterBuffers(nil) = %v", err)
	}
	if err := r.UnregisterBuffers(); !errors.Is(err, unix.ENXIO) {
		t.Fatalf("UnregisterBuffers with none = %v", err)
	}
}

func TestAttachWQ(t *testing.T) {
	a := newRing(t, 4)
	b := newRing(t, 4, WithAttachWQ(a.Fd()))
	if b.Flags()&SetupAttachWQ == 0 {
		t.Fatal("ATTACH_WQ flag missing")
	}
	s := sqe(t, b)
	s.PrepNop()
	s.SetFlags(SQEAsync) // runs on the shared worker pool
	wantRes(t, run(t, b, 1)[0], 0)
	if _, err := New(4, WithAttachWQ(-1)); err == nil {
		t.Fatal("attaching to fd -1 succeeded")
	}
}
