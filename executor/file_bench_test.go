//go:build linux

package executor

import (
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// File benchmarks: 4 KiB random reads by 32 goroutines (File.ReadAt,
// File.ReadBatch of 32, os.File.ReadAt), from the page cache and with
// O_DIRECT, and a whole-file copy (CopyFile against io.Copy of *os.Files).
// Each reports the most OS threads the process had during the run. Go keeps
// the threads it made, so a sub-benchmark also counts those an earlier one
// in the same process left: for clean counts (and for ratios), run one
// sub-benchmark per process, os and kasync alternating, with an anchored
// pattern per level such as '^BenchmarkFileRandRead$/^cache$/^ReadAt$'
// (a bare 'ReadAt$' matches os.ReadAt too).
//
// By default the file is 16 MiB, made in a temporary directory under
// /var/tmp (O_DIRECT does not work on every tmpfs) and removed afterwards.
// With KASYNC_BENCH_FILE=1 it is 1 GiB and kept as
// /var/tmp/kasync-bench-1073741824.dat for the next run (delete it by hand).
// The figures in the README come from
//
//	go test -c -o /tmp/executor.test ./executor
//	KASYNC_BENCH_FILE=1 GOMAXPROCS=1 taskset -c 0 /tmp/executor.test \
//	    -test.run '^$' -test.bench 'File' -test.count 5

const (
	benchReaders = 32
	benchBlock   = 4096
	benchBatch   = 32
)

var benchFileOnce struct {
	sync.Mutex
	path string
}

// benchFile returns the path of the benchmark file, making it if needed.
func benchFile(b *testing.B) (string, int64) {
	size := int64(16 << 20)
	keep := os.Getenv("KASYNC_BENCH_FILE") == "1"
	if keep {
		size = 1 << 30
	}
	if v := os.Getenv("KASYNC_BENCH_FILE_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("KASYNC_BENCH_FILE_SIZE: %v", err)
		}
		size = n
	}
	benchFileOnce.Lock()
	defer benchFileOnce.Unlock()
	var path string
	if keep {
		path = filepath.Join("/var/tmp", fmt.Sprintf("kasync-bench-%d.dat", size))
		if fi, err := os.Stat(path); err == nil && fi.Size() == size {
			warmCache(b, path)
			return path, size
		}
	} else {
		dir, err := os.MkdirTemp("/var/tmp", "kasync-bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "data")
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(chunk)) {
		r.Read(chunk)
		if _, err := f.Write(chunk[:min(int64(len(chunk)), size-off)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil { // O_DIRECT reads then need no writeback
		b.Fatal(err)
	}
	f.Close()
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	warmCache(b, path)
	return path, size
}

// warmCache reads the file once so that it is in the page cache.
func warmCache(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	io.Copy(io.Discard, f)
}

// threadSampler records the most OS threads (/proc/self/task) seen while it runs.
type threadSampler struct {
	max  atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func threadCount() int64 {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1
	}
	return int64(len(ents))
}

func startThreadSampler() *threadSampler {
	s := &threadSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.max.Store(threadCount())
	go func() {
		defer close(s.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if n := threadCount(); n > s.max.Load() {
					s.max.Store(n)
				}
			}
		}
	}()
	return s
}

func (s *threadSampler) finish() int64 {
	close(s.stop)
	<-s.done
	if n := threadCount(); n > s.max.Load() {
		s.max.Store(n)
	}
	return s.max.Load()
}

func BenchmarkFileRandRead(b *testing.B) {
	path, size := benchFile(b)
	for _, direct := range []bool{false, true} {
		cache := "cache"
		flag := os.O_RDONLY
		if direct {
			cache, flag = "direct", os.O_RDONLY|unix.O_DIRECT
		}
		for _, api := range []string{"os.ReadAt", "ReadAt", "ReadBatch32"} {
			b.Run(cache+"/"+api, func(b *testing.B) {
				benchRandRead(b, path, size, flag, api)
			})
		}
	}
}

func benchRandRead(b *testing.B, path string, size int64, flag int, api string) {
	var readAt func(p []byte, off int64) (int, error)
	var kf *File
	if api == "os.ReadAt" {
		f, err := os.OpenFile(path, flag, 0)
		if err != nil {
			b.Skipf("open: %v", err)
		}
		defer f.Close()
		readAt = f.ReadAt
	} else {
		e := fileExecutor(b)
		f, err := e.OpenFile(path, flag, 0)
		if err != nil {
			b.Skipf("open: %v", err)
		}
		defer f.Close()
		kf, readAt = f, f.ReadAt
	}
	blocks := size / benchBlock
	per := (b.N + benchReaders - 1) / benchReaders
	var wg sync.WaitGroup
	b.SetBytes(benchBlock)
	b.ReportAllocs()
	sampler := startThreadSampler()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for g := range benchReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g)))
			if api == "ReadBatch32" {
				buf := AlignedBuffer(benchBlock * benchBatch)
				reqs := make([]ReadRequest, benchBatch)
				for i := range reqs {
					reqs[i].Buf = buf[i*benchBlock : (i+1)*benchBlock]
				}
				for done := 0; done < per; done += benchBatch {
					batch := reqs[:min(benchBatch, per-done)]
					for i := range batch {
						batch[i].Off = r.Int63n(blocks) * benchBlock
					}
					if err := kf.ReadBatch(batch); err != nil {
						panic(err)
					}
				}
				return
			}
			buf := AlignedBuffer(benchBlock)
			for range per {
				if _, err := readAt(buf, r.Int63n(blocks)*benchBlock); err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	reportCPU(b, &ru0, &ru1)
	b.ReportMetric(float64(sampler.finish()), "threads")
}

// reportCPU reports the process's user and system CPU time per op between
// two Getrusage calls: on a shared machine, far steadier than the wall time.
func reportCPU(b *testing.B, ru0, ru1 *syscall.Rusage) {
	ns := func(t0, t1 syscall.Timeval) float64 { return float64(t1.Nano()-t0.Nano()) / float64(b.N) }
	b.ReportMetric(ns(ru0.Utime, ru1.Utime), "user-ns/op")
	b.ReportMetric(ns(ru0.Stime, ru1.Stime), "sys-ns/op")
}

func BenchmarkFileCopy(b *testing.B) {
	src, size := benchFile(b)
	dir := filepath.Dir(src)
	for _, api := range []string{"os.io.Copy", "CopyFile"} {
		b.Run(api, func(b *testing.B) {
			e := fileExecutor(b)
			b.SetBytes(size)
			sampler := startThreadSampler()
			for i := range b.N {
				dst := filepath.Join(dir, fmt.Sprintf("copy-%d-%d", os.Getpid(), i))
				var err error
				if api == "CopyFile" {
					err = copyKasync(e, dst, src)
				} else {
					err = copyOS(dst, src)
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.Remove(dst)
				unix.Sync() // no writeback of earlier copies during the next
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(sampler.finish()), "threads")
		})
	}
}

func copyKasync(e *Executor, dst, src string) error {
	in, err := e.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := e.Create(dst)
	if err != nil {
		return err
	}
	if _, err := e.CopyFile(out, in); err != nil {
		return err
	}
	return out.Close()
}

func copyOS(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Close()
}
