//go:build linux

package executor

import (
	"io"
	"math/rand"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BenchmarkFileReadAtCached takes the cost of a cached 4 KiB ReadAt apart,
// on one goroutine and the same offsets for each: os.File.ReadAt, kasync's
// File.ReadAt, and the bare system calls under them (pread64, which os
// makes, and preadv2 with RWF_NOWAIT, which readCached makes); "-tail"
// reads 4 KiB at 1000 bytes before the end (1000 bytes and io.EOF). The kernel's
// share of the gap is preadv2 against pread64; ours is File.ReadAt against
// preadv2. Each reports the process's CPU time (user and system) per read
// beside the wall time. Run one sub-benchmark per process, alternating:
//
//	GOMAXPROCS=1 taskset -c 0 /tmp/executor.test -test.run '^$' \
//	    -test.bench '^BenchmarkFileReadAtCached$/^os$' -test.count 1
func BenchmarkFileReadAtCached(b *testing.B) {
	path, size := benchFile(b)
	blocks := size / benchBlock
	for _, api := range []string{"os", "kasync", "pread64", "preadv2", "os-tail", "kasync-tail"} {
		b.Run(api, func(b *testing.B) {
			osf, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer osf.Close()
			var readAt func(p []byte, off int64) (int, error)
			switch api {
			case "os", "os-tail":
				readAt = osf.ReadAt
			case "kasync", "kasync-tail":
				f, err := fileExecutor(b).Open(path)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				readAt = f.ReadAt
			case "pread64":
				fd := int(osf.Fd())
				readAt = func(p []byte, off int64) (int, error) { return unix.Pread(fd, p, off) }
			case "preadv2":
				fd := uintptr(osf.Fd())
				readAt = func(p []byte, off int64) (int, error) {
					iov := unix.Iovec{Base: &p[0]}
					iov.SetLen(len(p))
					n, _, errno := unix.Syscall6(unix.SYS_PREADV2, fd, uintptr(unsafe.Pointer(&iov)), 1, uintptr(off), 0, unix.RWF_NOWAIT)
					if errno != 0 {
						return 0, errno
					}
					return int(n), nil
				}
			}
			buf := AlignedBuffer(benchBlock)
			r := rand.New(rand.NewSource(1))
			offs := make([]int64, 1<<16)
			want, wantErr := benchBlock, error(nil)
			for i := range offs {
				offs[i] = r.Int63n(blocks) * benchBlock
				if strings.HasSuffix(api, "-tail") { // the last 1000 bytes, and io.EOF
					offs[i], want, wantErr = size-1000, 1000, io.EOF
				}
			}
			b.SetBytes(benchBlock)
			b.ReportAllocs()
			eagain := 0
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.ResetTimer()
			for i := range b.N {
				n, err := readAt(buf, offs[i&(len(offs)-1)])
				if err == syscall.EAGAIN {
					eagain++
					continue
				}
				if n != want || err != wantErr {
					b.Fatal(n, err)
				}
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			reportCPU(b, &ru0, &ru1)
			b.ReportMetric(float64(eagain)/float64(b.N), "eagain/op")
		})
	}
}
