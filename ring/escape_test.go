//go:build linux

package ring

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// growStack uses enough stack to make the runtime move the goroutine's stack
// to a bigger one.
//
//go:noinline
func growStack(n int) byte {
	var pad [1024]byte
	pad[n%len(pad)] = byte(n)
	if n == 0 {
		return pad[0]
	}
	return growStack(n-1) + pad[n%len(pad)]
}

// readThroughMovedStack prepares a read into a local buffer and a timeout
// with a local timespec, moves the stack, then submits. The kernel must
// write where buf is now, which holds only if Prep made buf a heap object.
//
//go:noinline
func readThroughMovedStack(r *Ring, fd int) (string, error) {
	buf := make([]byte, 8)
	ts := &unix.Timespec{Nsec: 1}
	s, _ := r.GetSQE()
	s.PrepRead(fd, buf, -1)
	s, _ = r.GetSQE()
	s.PrepTimeout(ts, 0, 0)
	growStack(64) // 64 KiB: the stack is copied
	if _, err := r.SubmitAndWait(2); err != nil {
		return "", err
	}
	var cqes [2]CQE
	if n := r.PeekBatch(cqes[:]); n != 2 || cqes[0].Res != 5 {
		return "", fmt.Errorf("CQEs %+v", cqes[:n])
	}
	r.CQAdvance(2)
	return string(buf[:5]), nil
}

// TestPrepMemoryEscapesToHeap proves that memory handed to a Prep method is
// not left on the goroutine stack, which moves (a bug the binding had: the
// uintptr conversion let the compiler keep such buffers on the stack).
func TestPrepMemoryEscapesToHeap(t *testing.T) {
	r := newRing(t, 4)
	rd, wr := pipe(t)
	for i := 0; i < 3; i++ {
		write(t, wr, "moved")
		type result struct {
			s   string
			err error
		}
		done := make(chan result)
		go func() { // a fresh, small stack
			s, err := readThroughMovedStack(r, rd)
			done <- result{s, err}
		}()
		if got := <-done; got.err != nil || got.s != "moved" {
			t.Fatalf("read into a buffer on a stack that moved: buf holds %q, %v", got.s, got.err)
		}
	}
}
