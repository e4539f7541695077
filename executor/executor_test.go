//go:build linux

package executor

import (
	"context"
	"errors"
	"math/rand"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

func newTestExecutor(t testing.TB, opts ...Option) *Executor {
	t.Helper()
	e, err := New(append([]Option{WithStrict()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestSleep(t *testing.T) {
	e := newTestExecutor(t)
	start := time.Now()
	if err := e.Sleep(context.Background(), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("slept %v, want >= 20ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := e.Sleep(ctx, time.Hour)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sleep past deadline: %v", err)
	}
}

func TestPipeReadCancel(t *testing.T) {
	e := newTestExecutor(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	l := e.loop()
	buf := make([]byte, 8)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	n, err := l.do(ctx, func(s *ring.SQE, _ *op) { s.PrepRead(p[0], buf, -1) })
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("cancelled read: %d %v", n, err)
	}
	unix.Write(p[1], []byte("abc"))
	n, err = l.do(context.Background(), func(s *ring.SQE, _ *op) { s.PrepRead(p[0], buf, -1) })
	if err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("read after cancel: %q %v", buf[:n], err)
	}
}

func TestManyOpsCancelledAtRandom(t *testing.T) {
	e := newTestExecutor(t, WithLoops(2))
	const N = 10000
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]int{}
	for i := 0; i < N; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if rand.Intn(2) == 0 {
				time.AfterFunc(time.Duration(rand.Intn(1000))*time.Microsecond, cancel)
			}
			err := e.Sleep(ctx, time.Duration(rand.Intn(2000))*time.Microsecond)
			mu.Lock()
			switch {
			case err == nil:
				results["slept"]++
			case errors.Is(err, context.Canceled):
				results["cancelled"]++
			default:
				results[err.Error()]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if results["slept"]+results["cancelled"] != N {
		t.Fatalf("results: %v", results)
	}
	s := e.Stats()
	if s.InFlight != 0 || s.Stale != 0 {
		t.Fatalf("stats after: %+v", s)
	}
	t.Logf("%v %+v", results, s)
}

func TestCloseUnderLoad(t *testing.T) {
	e, err := New(WithStrict())
	if err != nil {
		t.Fatal(err)
	}
	var tasks []*Task
	for i := 0; i < 200; i++ {
		tk, err := e.Spawn(func(ctx context.Context) error {
			for {
				if err := e.Sleep(ctx, time.Hour); err != nil {
					return err
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, tk)
	}
	time.Sleep(20 * time.Millisecond)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if err := tk.Wait(); !errors.Is(err, ErrClosed) {
			t.Fatalf("task: %v", err)
		}
	}
	if _, err := e.Spawn(func(context.Context) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("spawn after close: %v", err)
	}
	if err := e.Sleep(context.Background(), time.Millisecond); !errors.Is(err, ErrClosed) {
		t.Fatalf("sleep after close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkNop64(b *testing.B) {
	for _, mode := range []string{"executor", "syscall"} {
		b.Run(mode, func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			e := newTestExecutor(b, WithLoops(1))
			l := e.loop()
			fd, err := unix.Open("/dev/zero", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(fd)
			const G = 64
			var wg sync.WaitGroup
			per := b.N/G + 1
			b.ReportAllocs()
			b.ResetTimer()
			for g := 0; g < G; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 64)
					ctx := context.Background()
					for i := 0; i < per; i++ {
						if mode == "executor" {
							if _, err := l.do(ctx, func(s *ring.SQE, _ *op) { s.PrepRead(fd, buf, 0) }); err != nil {
								panic(err)
							}
						} else if _, err := syscall.Read(fd, buf); err != nil {
							panic(err)
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(e.Stats().MeanBatch, "sqes/enter")
		})
	}
}
