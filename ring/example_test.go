//go:build linux

package ring_test

import (
	"errors"
	"fmt"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// The first thing to do with a ring: read from a pipe through it.
func Example() {
	r, err := ring.New(8)
	if errors.Is(err, ring.ErrUnavailable) {
		fmt.Println(err) // says why: seccomp, an old kernel, memlock...
		return
	}
	if err != nil {
		panic(err)
	}
	defer r.Close()

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		panic(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.Write(p[1], []byte("hello, io_uring"))

	buf := make([]byte, 64) // must stay alive until the read completes
	sqe, err := r.GetSQE()
	if err != nil {
		panic(err)
	}
	sqe.PrepRead(p[0], buf, -1)
	sqe.SetUserData(1)
	if _, err := r.SubmitAndWait(1); err != nil {
		panic(err)
	}
	cqe, err := r.WaitCQE()
	if err != nil {
		panic(err)
	}
	if err := cqe.Err(); err != nil {
		fmt.Println("read failed:", err)
	} else {
		fmt.Printf("request %d read %q\n", cqe.UserData, buf[:cqe.Res])
	}
	r.SeenCQE(cqe) // cqe is not to be used after this
	// Output: request 1 read "hello, io_uring"
}

// A multishot receive: one SQE, one CQE per arrival of data, each in a buffer
// the kernel takes from a buffer ring.
func ExampleRing_NewBufRing() {
	r, err := ring.New(8)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	br, err := r.NewBufRing(1, 4, 256) // group 1: 4 buffers of 256 bytes
	if err != nil {
		panic(err)
	}
	defer br.Close()

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		panic(err)
	}
	defer unix.Close(fds[1])

	sqe, _ := r.GetSQE()
	sqe.PrepRecvMultishot(fds[1], 0, br.Group())
	r.Submit()
	for i, msg := range []string{"one", "two", ""} {
		if msg == "" {
			unix.Close(fds[0]) // the peer goes away: the last CQE
		} else {
			unix.Write(fds[0], []byte(msg))
		}
		cqe, err := r.WaitCQE()
		if err != nil {
			panic(err)
		}
		if id, ok := cqe.BufferID(); ok {
			fmt.Printf("%d: %q in buffer %d, more: %v\n", i, br.Buf(id)[:cqe.Res], id, cqe.More())
			br.Recycle(id) // done with the data: the kernel may reuse the buffer
		} else {
			fmt.Printf("%d: Res %d, more: %v\n", i, cqe.Res, cqe.More())
		}
		r.SeenCQE(cqe)
	}
	// Output:
	// 0: "one" in buffer 0, more: true
	// 1: "two" in buffer 1, more: true
	// 2: Res 0, more: false
}
