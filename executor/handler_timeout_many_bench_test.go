//go:build linux

package executor

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkServeManyConnsTimeouts is the whole-loop measure of what
// timeouts cost: one loop holds 100,000 idle connections (or as many as
// the descriptor limit allows) and 64 busy ones, with no timeouts or with
// a read, a write and an idle timeout on every connection; each op is a
// round of 64 B echoes on the 64 busy ones (all written, then all read
// back). A turn touches the timer heap's first entry only, and a busy
// connection's stamps are a few stores beside the state update its
// completion makes anyway. BenchmarkLoopTimeoutsTurn isolates the stamps
// and the heap.
//
// The connections are socket pairs adopted into the loop, their other ends
// driven with plain blocking syscalls, so that no ports and little client
// work are involved. It needs about 210,000 descriptors: where the limit
// cannot be raised that far (no CAP_SYS_RESOURCE), it holds as many
// connections as the limit allows, and says so.
func BenchmarkServeManyConnsTimeouts(b *testing.B) {
	const busy = 64
	idle := 100_000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if want := uint64(2*(idle+busy) + 10_000); lim.Cur < want {
		raised := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		} else {
			// Without CAP_SYS_RESOURCE the hard limit stands: as many
			// as fit (two descriptors a connection, some to spare).
			idle = int(lim.Cur)/2 - busy - 500
			b.Logf("descriptor limit %d (raising it: %v): %d idle connections, not 100,000", lim.Cur, err, idle)
		}
	}
	for _, tc := range []struct {
		name string
		opts []ServeOption
	}{{"none", nil}, {"timeouts", allTimeouts}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newTestExecutor(b)
			s := hServe(b, e, &hFuncs{}, append([]ServeOption{ServeLoops(1)}, tc.opts...)...)
			var peers []int // our ends: the idle ones, then the busy ones
			defer func() {
				for _, fd := range peers {
					unix.Close(fd)
				}
			}()
			for i := range idle + busy {
				fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					b.Fatalf("socketpair %d: %v", i, err)
				}
				peers = append(peers, fds[0])
				f := os.NewFile(uintptr(fds[1]), "adopted")
				nc, err := net.FileConn(f)
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Adopt(0, nc, nil); err != nil {
					b.Fatal(err)
				}
			}
			hWaitFor(b, fmt.Sprintf("%d conns adopted", idle+busy), func() bool { return s.Stats().Conns == idle+busy })
			active := peers[idle:]
			msg, buf := make([]byte, 64), make([]byte, 64)
			round := func() {
				for _, fd := range active {
					if _, err := unix.Write(fd, msg); err != nil {
						b.Fatal(err)
					}
				}
				for _, fd := range active {
					for got := 0; got < len(buf); {
						n, err := unix.Read(fd, buf[got:])
						if err != nil || n == 0 {
							b.Fatalf("read: %d, %v", n, err)
						}
						got += n
					}
				}
			}
			for range 100 {
				round()
			}
			t0 := s.Stats().Turns
			b.ResetTimer()
			for b.Loop() {
				round()
			}
			b.ReportMetric(float64(s.Stats().Turns-t0)/float64(b.N), "turns/op")
			b.ReportMetric(float64(idle+busy), "conns")
		})
	}
}
