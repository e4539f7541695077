//go:build linux

package ring

import (
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkNop measures the binding's own cost per operation: GetSQE and
// PrepNop for each, one SubmitAndWait per batch, then reaping the batch with
// PeekBatch and CQAdvance. bench/liburing/nop.c does the same in C. Besides
// ns/op (wall time) it reports cpu-ns/op, the process's CPU time (user and
// system) per operation, which other load on the machine disturbs less.
//
// bench/liburing/run.sh 7 on a shared 2-CPU VM (Linux 6.18, Go 1.26, liburing
// 2.3), medians in ns/op, C then Go: batch=1 547 and 513 (Go/C 0.94),
// batch=32 91.5 and 86.0 (0.94). The run just before, of the ring as it was
// before enters that do not wait became raw system calls and SubmitAndWait
// two steps (submitThenWait): 540 and 746 (1.38), 86.3 and 108 (1.25).
// Ratios from one run only: the VM's load moves both by 10% and more.
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
	cpu0 := cpuTime()
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
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the CPU time this process has used, in nanoseconds.
func cpuTime() int64 {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
