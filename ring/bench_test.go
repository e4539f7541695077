package ring

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkNop measures the binding's own cost per operation: GetSQE and
// PrepNop for each, one SubmitAndWait per batch, then reaping the batch with
// PeekBatch and CQAdvance. bench/liburing/nop.c does the same in C.
func BenchmarkNop(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchNop(b, batch, false) })
	}
}

// BenchmarkNopRegisteredRing is BenchmarkNop with the ring fd registered
// (RegisterRingFd, on a locked thread): the kernel then skips the fd lookup,
// which in a multi-threaded process such as any Go program costs a
// reference count on the ring's file per io_uring_enter.
func BenchmarkNopRegisteredRing(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchNop(b, batch, true) })
	}
}

func benchNop(b *testing.B, batch int, registered bool) {
	if registered {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	r, err := New(64)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if registered {
		if err := r.RegisterRingFd(); err != nil {
			b.Fatal(err)
		}
	}
	dst := make([]CQE, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		for i := 0; i < n; i++ {
			s, err := r.GetSQE()
			if err != nil {
				b.Fatal(err)
			}
			s.PrepNop()
		}
		if _, err := r.SubmitAndWait(uint32(n)); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < n; {
			m := r.PeekBatch(dst)
			r.CQAdvance(uint32(m))
			got += m
		}
		done += n
	}
}
