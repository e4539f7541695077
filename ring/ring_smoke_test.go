package ring

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestSmokePipeRead(t *testing.T) {
	r, err := New(8)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.Write(p[1], []byte("hello"))
	buf := make([]byte, 16)
	sqe, _ := r.GetSQE()
	sqe.PrepRead(p[0], buf, -1)
	sqe.SetUserData(42)
	if n, err := r.SubmitAndWait(1); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	c, err := r.PeekCQE()
	if err != nil || c.UserData != 42 || c.Res != 5 || string(buf[:5]) != "hello" {
		t.Fatal(c, err)
	}
	r.SeenCQE(c)
	t.Logf("features %#x flags %#x sq %d cq %d", r.Features(), r.Flags(), r.SQEntries(), r.CQEntries())
	for _, opt := range []Option{WithNoSQArray(), WithDeferTaskrun(), WithCoopTaskrun(), WithSQPoll(10)} {
		r2, err := New(4, opt)
		if err != nil {
			t.Fatal(err)
		}
		sqe, _ := r2.GetSQE()
		sqe.PrepNop()
		if _, err := r2.SubmitAndWait(1); err != nil {
			t.Fatal(err)
		}
		if _, err := r2.WaitCQE(); err != nil {
			t.Fatal(err)
		}
		r2.Close()
	}
	br, err := r.NewBufRing(1, 8, 64, Incremental())
	t.Log(br, err)
}
