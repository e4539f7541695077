//go:build linux

package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/kasync-go/kasync/internal/seccomp"
	"golang.org/x/sys/unix"
)

// Tests of File against the real kernel. exerciseFiles holds the behaviour
// both backends must share; it runs on io_uring here and on the Go backend
// in a child process whose io_uring is refused by seccomp.

func fileExecutor(t testing.TB, opts ...Option) *Executor {
	t.Helper()
	e, err := New(append([]Option{WithStrict()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func TestFileSemantics(t *testing.T) {
	e := fileExecutor(t, WithLoops(2))
	before := openFDs(t)
	if err := exerciseFiles(e, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after != before {
		t.Fatalf("fds: %d before, %d after the files were closed", before, after)
	}
}

func init() {
	childFuncs["fileFallback"] = func() error {
		if err := seccomp.RefuseIOUring(); err != nil {
			return err
		}
		e, err := New(WithLogger(quietLogger))
		if err != nil {
			return err
		}
		defer e.Close()
		if e.Backend() != BackendGo {
			return fmt.Errorf("backend %s under seccomp", e.Backend())
		}
		dir, err := os.MkdirTemp("", "kasync-fallback")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := exerciseFiles(e, dir); err != nil {
			return err
		}
		fmt.Println("fallback files ok")
		return nil
	}
}

func TestFileFallback(t *testing.T) {
	if out := runInChild(t, "fileFallback"); out != "fallback files ok" {
		t.Fatalf("child: %s", out)
	}
}

// exerciseFiles checks what a File promises, on either backend.
func exerciseFiles(e *Executor, dir string) error {
	for _, check := range []func(*Executor, string) error{
		checkRoundTrip, checkEOF, checkStream, checkStat, checkErrors,
		checkBatch, checkCopy, checkFixed, checkSizeOps,
	} {
		if err := check(e, dir); err != nil {
			return err
		}
	}
	return nil
}

// checkRoundTrip writes at odd offsets and sizes and reads it all back.
func checkRoundTrip(e *Executor, dir string) error {
	r := rand.New(rand.NewSource(1))
	name := filepath.Join(dir, "roundtrip")
	f, err := e.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	var model []byte
	for _, size := range []int{0, 1, 3, 511, 4095, 4096, 4097, 65537, 1<<20 + 7} {
		off := int64(r.Intn(1 << 20))
		if size%2 == 1 {
			off |= 1
		}
		data := randBytes(r, size)
		n, err := f.WriteAt(data, off)
		if err != nil || n != size {
			return fmt.Errorf("WriteAt(%d bytes, %d) = %d, %v", size, off, n, err)
		}
		if end := off + int64(size); size > 0 && end > int64(len(model)) {
			model = append(model, make([]byte, end-int64(len(model)))...)
		}
		if size > 0 {
			copy(model[off:], data)
		}
		got := make([]byte, size)
		if n, err := f.ReadAt(got, off); n != size || (err != nil && err != io.EOF) || !bytes.Equal(got, data) {
			return fmt.Errorf("ReadAt(%d bytes, %d) = %d, %v; equal %v", size, off, n, err, bytes.Equal(got, data))
		}
	}
	disk, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if !bytes.Equal(disk, model) {
		return fmt.Errorf("file holds %d bytes, model %d; equal %v", len(disk), len(model), bytes.Equal(disk, model))
	}
	all := make([]byte, len(model)+100)
	n, err := f.ReadAt(all, 0)
	if n != len(model) || err != io.EOF || !bytes.Equal(all[:n], model) {
		return fmt.Errorf("ReadAt of the whole file and more = %d, %v (want %d, EOF)", n, err, len(model))
	}
	return nil
}

// checkEOF: short reads at the end, empty files, Read at EOF.
func checkEOF(e *Executor, dir string) error {
	name := filepath.Join(dir, "ten")
	if err := os.WriteFile(name, []byte("0123456789"), 0o644); err != nil {
		return err
	}
	f, err := e.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 20)
	for _, c := range []struct {
		off  int64
		n    int
		err  error
		size int
	}{{0, 10, io.EOF, 20}, {7, 3, io.EOF, 20}, {10, 0, io.EOF, 20}, {100, 0, io.EOF, 20},
		{0, 10, nil, 10}, {3, 5, nil, 5}, {9, 0, nil, 0}} {
		n, err := f.ReadAt(buf[:c.size], c.off)
		if n != c.n || err != c.err {
			return fmt.Errorf("ReadAt(%d bytes, %d) = %d, %v; want %d, %v", c.size, c.off, n, err, c.n, c.err)
		}
	}
	var _ io.ReaderAt = f
	var _ io.WriterAt = f
	var _ io.ReadWriteSeeker = f
	var _ io.Closer = f

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return err
	}
	g, err := e.Open(empty)
	if err != nil {
		return err
	}
	defer g.Close()
	if n, err := g.ReadAt(buf, 0); n != 0 || err != io.EOF {
		return fmt.Errorf("ReadAt of an empty file = %d, %v", n, err)
	}
	if n, err := g.Read(buf); n != 0 || err != io.EOF {
		return fmt.Errorf("Read of an empty file = %d, %v", n, err)
	}
	if b, err := io.ReadAll(g); len(b) != 0 || err != nil {
		return fmt.Errorf("ReadAll of an empty file = %q, %v", b, err)
	}
	return nil
}

// checkStream: Read, Write, Seek and O_APPEND share the file position as os.File does.
func checkStream(e *Executor, dir string) error {
	name := filepath.Join(dir, "stream")
	f, err := e.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write([]byte("hello, ")); err != nil {
		return err
	}
	if _, err := io.WriteString(f, "world"); err != nil {
		return err
	}
	if pos, err := f.Seek(0, io.SeekCurrent); pos != 12 || err != nil {
		return fmt.Errorf("Seek(0, current) = %d, %v", pos, err)
	}
	if _, err := f.Seek(7, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	if string(b) != "world" || err != nil {
		return fmt.Errorf("ReadAll after Seek(7) = %q, %v", b, err)
	}
	if _, err := f.Seek(-5, io.SeekEnd); err != nil {
		return err
	}
	small := make([]byte, 3)
	if n, err := f.Read(small); n != 3 || string(small) != "wor" || err != nil {
		return fmt.Errorf("Read = %d %q %v", n, small, err)
	}
	if _, err := f.Seek(0, 7); err == nil {
		return fmt.Errorf("Seek with whence 7 succeeded")
	}

	a, err := e.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.Write([]byte("!")); err != nil {
		return err
	}
	if _, err := a.WriteAt([]byte("x"), 0); err == nil {
		return fmt.Errorf("WriteAt on O_APPEND succeeded")
	}
	if got, _ := os.ReadFile(name); string(got) != "hello, world!" {
		return fmt.Errorf("file holds %q", got)
	}
	return nil
}

func checkStat(e *Executor, dir string) error {
	name := filepath.Join(dir, "stat")
	if err := os.WriteFile(name, make([]byte, 12345), 0o640); err != nil {
		return err
	}
	f, err := e.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	want, err := os.Stat(name)
	if err != nil {
		return err
	}
	if fi.Name() != "stat" || fi.Size() != 12345 || fi.Mode() != want.Mode() || fi.IsDir() ||
		!fi.ModTime().Equal(want.ModTime()) || fi.Sys() == nil {
		return fmt.Errorf("Stat = %s %d %v %v %v, os.Stat = %v %v", fi.Name(), fi.Size(), fi.Mode(), fi.IsDir(), fi.ModTime(), want.Mode(), want.ModTime())
	}
	d, err := e.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if fi, err := d.Stat(); err != nil || !fi.IsDir() || fi.Mode()&fs.ModeDir == 0 {
		return fmt.Errorf("Stat of a directory: %v, %v", fi, err)
	}
	if f.Name() != name {
		return fmt.Errorf("Name() = %q", f.Name())
	}
	return nil
}

// checkErrors: *fs.PathError with the errno, as os.File gives.
func checkErrors(e *Executor, dir string) error {
	missing := filepath.Join(dir, "no-such-file")
	_, err := e.Open(missing)
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "open" || pe.Path != missing {
		return fmt.Errorf("Open of a missing file: %#v", err)
	}
	if _, err := e.Open("bad\x00name"); !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("Open of a name with NUL: %v", err)
	}

	d, err := e.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	buf := make([]byte, 10)
	if _, err := d.ReadAt(buf, 0); !errors.Is(err, syscall.EISDIR) || !errors.As(err, &pe) || pe.Op != "read" {
		return fmt.Errorf("ReadAt of a directory: %v", err)
	}
	if _, err := d.Read(buf); !errors.Is(err, syscall.EISDIR) {
		return fmt.Errorf("Read of a directory: %v", err)
	}

	name := filepath.Join(dir, "wronly")
	w, err := e.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := w.ReadAt(buf, 0); !errors.Is(err, syscall.EBADF) {
		return fmt.Errorf("ReadAt of a write-only file: %v", err)
	}
	r, err := e.Open(name)
	if err != nil {
		return err
	}
	if _, err := r.WriteAt(buf, 0); !errors.Is(err, syscall.EBADF) {
		return fmt.Errorf("WriteAt to a read-only file: %v", err)
	}
	if _, err := r.ReadAt(buf, -1); err == nil {
		return fmt.Errorf("ReadAt at offset -1 succeeded")
	}
	if err := r.Close(); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if _, err := r.ReadAt(buf, 0); !errors.Is(err, fs.ErrClosed) {
		return fmt.Errorf("ReadAt after Close: %v", err)
	}
	if _, err := r.Read(buf); !errors.Is(err, fs.ErrClosed) {
		return fmt.Errorf("Read after Close: %v", err)
	}
	if _, err := r.Stat(); !errors.Is(err, fs.ErrClosed) {
		return fmt.Errorf("Stat after Close: %v", err)
	}
	if err := r.Close(); !errors.Is(err, fs.ErrClosed) {
		return fmt.Errorf("second Close: %v", err)
	}
	return nil
}

// checkBatch: ReadBatch and WriteBatch give every request ReadAt/WriteAt's result.
func checkBatch(e *Executor, dir string) error {
	r := rand.New(rand.NewSource(2))
	name := filepath.Join(dir, "batch")
	data := randBytes(r, 300_001)
	if err := os.WriteFile(name, data, 0o644); err != nil {
		return err
	}
	f, err := e.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	reqs := make([]ReadRequest, 100) // more than a batch keeps on the stack
	for i := range reqs {
		size := 1 + r.Intn(9000)
		reqs[i] = ReadRequest{Buf: make([]byte, size), Off: int64(r.Intn(len(data)))}
	}
	reqs[0].Off = int64(len(data) - 10) // short: EOF
	reqs[1].Off = int64(len(data) + 10) // past the end
	reqs[2].Buf = nil                   // nothing to read
	reqs[3].Off = -5
	if err := f.ReadBatch(reqs); err == nil || !strings.Contains(err.Error(), "negative") {
		return fmt.Errorf("ReadBatch error: %v, want request 3's", err)
	}
	for i, q := range reqs {
		want := make([]byte, len(q.Buf))
		wn, werr := 0, error(nil)
		if q.Off >= 0 {
			wn, werr = bytes.NewReader(data).ReadAt(want, q.Off)
		}
		if q.Off < 0 {
			if q.Err == nil {
				return fmt.Errorf("request %d at a negative offset: no error", i)
			}
			continue
		}
		if q.N != wn || q.Err != werr || !bytes.Equal(q.Buf[:q.N], want[:wn]) {
			return fmt.Errorf("request %d (%d bytes at %d): %d, %v; want %d, %v", i, len(q.Buf), q.Off, q.N, q.Err, wn, werr)
		}
	}

	w := make([]WriteRequest, 70)
	for i := range w {
		w[i] = WriteRequest{Buf: randBytes(r, 1000), Off: int64(i * 1000)}
		copy(data[i*1000:], w[i].Buf)
	}
	if err := f.WriteBatch(w); err != nil {
		return err
	}
	for i, q := range w {
		if q.N != 1000 || q.Err != nil {
			return fmt.Errorf("write request %d: %d, %v", i, q.N, q.Err)
		}
	}
	if got, _ := os.ReadFile(name); !bytes.Equal(got, data) {
		return fmt.Errorf("file after WriteBatch differs")
	}
	return nil
}

// checkCopy: CopyFile copies from position to position, exactly, with
// copy_file_range and with the ring's pipeline.
func checkCopy(e *Executor, dir string) error {
	if err := checkCopyWith(e, dir); err != nil {
		return fmt.Errorf("copy_file_range: %w", err)
	}
	noCopyRange = true
	defer func() { noCopyRange = false }()
	if err := checkCopyWith(e, dir); err != nil {
		return fmt.Errorf("ring pipeline: %w", err)
	}
	return nil
}

func checkCopyWith(e *Executor, dir string) error {
	r := rand.New(rand.NewSource(3))
	for _, size := range []int{0, 1, copyChunk - 1, copyChunks*copyChunk + 5, 3*copyChunks*copyChunk + 1234} {
		data := randBytes(r, size)
		srcName, dstName := filepath.Join(dir, "copy-src"), filepath.Join(dir, "copy-dst")
		if err := os.WriteFile(srcName, data, 0o644); err != nil {
			return err
		}
		src, err := e.Open(srcName)
		if err != nil {
			return err
		}
		dst, err := e.Create(dstName)
		if err != nil {
			return err
		}
		skip := min(size, 3)
		if _, err := src.Seek(int64(skip), io.SeekStart); err != nil {
			return err
		}
		if _, err := dst.Write([]byte("head")); err != nil {
			return err
		}
		n, err := e.CopyFile(dst, src)
		if err != nil || n != int64(size-skip) {
			return fmt.Errorf("CopyFile of %d bytes from %d = %d, %v", size, skip, n, err)
		}
		if pos, _ := dst.Seek(0, io.SeekCurrent); pos != int64(4+size-skip) {
			return fmt.Errorf("dst position after CopyFile = %d", pos)
		}
		if pos, _ := src.Seek(0, io.SeekCurrent); pos != int64(size) {
			return fmt.Errorf("src position after CopyFile = %d", pos)
		}
		src.Close()
		dst.Close()
		got, _ := os.ReadFile(dstName)
		if !bytes.Equal(got, append([]byte("head"), data[skip:]...)) {
			return fmt.Errorf("copy of %d bytes differs", size)
		}
	}
	return nil
}

// checkFixed: registered buffers work with every loop's files.
func checkFixed(e *Executor, dir string) error {
	bufs, err := e.RegisterBuffers(4, 10000)
	if err != nil {
		return err
	}
	if _, err := e.RegisterBuffers(1, 100); err == nil && e.Backend() == BackendIOURing {
		return fmt.Errorf("a second RegisterBuffers succeeded")
	}
	defer e.UnregisterBuffers()
	name := filepath.Join(dir, "fixed")
	for i := range 3 { // several files: they land on different loops
		f, err := e.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		b := bufs[i]
		for j := range b.Bytes() {
			b.Bytes()[j] = byte(i + j)
		}
		if n, err := f.WriteAtFixed(b.Slice(1, 5001), 7); n != 5000 || err != nil {
			return fmt.Errorf("WriteAtFixed = %d, %v", n, err)
		}
		out := bufs[3]
		n, err := f.ReadAtFixed(out, 0)
		if n != 5007 || err != io.EOF || !bytes.Equal(out.Bytes()[7:n], b.Bytes()[1:5001]) {
			return fmt.Errorf("ReadAtFixed = %d, %v", n, err)
		}
		f.Close()
	}
	if err := e.UnregisterBuffers(); err != nil {
		return err
	}
	if _, err := e.RegisterBuffers(2, 4096); err != nil {
		return fmt.Errorf("RegisterBuffers after UnregisterBuffers: %v", err)
	}
	return nil
}

// checkSizeOps: Truncate, Fallocate, Sync, Datasync, Chmod.
func checkSizeOps(e *Executor, dir string) error {
	name := filepath.Join(dir, "sizes")
	f, err := e.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	size := func() int64 { fi, _ := os.Stat(name); return fi.Size() }
	if err := f.Truncate(1000); err != nil || size() != 1000 {
		return fmt.Errorf("Truncate(1000): %v, size %d", err, size())
	}
	if err := f.Fallocate(0, 0, 1<<20); err != nil || size() != 1<<20 {
		return fmt.Errorf("Fallocate(1 MiB): %v, size %d", err, size())
	}
	if err := f.Truncate(10); err != nil || size() != 10 {
		return fmt.Errorf("Truncate(10): %v, size %d", err, size())
	}
	if err := f.Truncate(-1); err == nil {
		return fmt.Errorf("Truncate(-1) succeeded")
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Datasync(); err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if fi, _ := os.Stat(name); fi.Mode() != 0o600 {
		return fmt.Errorf("mode after Chmod(0600): %v", fi.Mode())
	}
	return nil
}

func TestFileConcurrentReadAt(t *testing.T) {
	e := fileExecutor(t, WithLoops(2))
	f, data := openRandomFile(t, e, 4<<20, 4)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g)))
			buf := make([]byte, 8192)
			for range 200 {
				size := 1 + r.Intn(len(buf))
				off := int64(r.Intn(len(data) - size))
				if n, err := f.ReadAt(buf[:size], off); n != size || err != nil || !bytes.Equal(buf[:size], data[off:off+int64(size)]) {
					errs <- fmt.Errorf("goroutine %d: ReadAt(%d, %d) = %d, %v", g, size, off, n, err)
					return
				}
			}
			if g%2 == 0 { // half of them batch too
				reqs := make([]ReadRequest, 16)
				for i := range reqs {
					reqs[i] = ReadRequest{Buf: make([]byte, 4096), Off: int64(r.Intn(len(data) - 4096))}
				}
				if err := f.ReadBatch(reqs); err != nil {
					errs <- err
					return
				}
				for _, q := range reqs {
					if !bytes.Equal(q.Buf, data[q.Off:q.Off+4096]) {
						errs <- fmt.Errorf("goroutine %d: batch read at %d differs", g, q.Off)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestFileCloseWhileInFlight closes a FIFO with reads blocked on it: Close
// returns, the reads return fs.ErrClosed, and no descriptor is left.
func TestFileCloseWhileInFlight(t *testing.T) {
	e := fileExecutor(t, WithLoops(2))
	before := openFDs(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		f, err := e.OpenFile(fifo, os.O_RDWR, 0) // RDWR: the open does not wait for a writer
		if err != nil {
			t.Fatal(err)
		}
		const readers = 4
		res := make(chan error, readers+1)
		for range readers {
			go func() {
				_, err := f.Read(make([]byte, 16))
				res <- err
			}()
		}
		go func() { // a batch on the FIFO fails at once (no pread on pipes) or is cancelled
			reqs := []ReadRequest{{Buf: make([]byte, 8)}}
			f.ReadBatch(reqs)
			res <- reqs[0].Err
		}()
		deadline := time.Now().Add(5 * time.Second)
		for e.Stats().InFlight == 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		if round%2 == 1 {
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Close took %v", d)
		}
		for range readers + 1 {
			select {
			case err := <-res:
				if !errors.Is(err, fs.ErrClosed) && !errors.Is(err, syscall.ESPIPE) {
					t.Fatalf("read on a closed FIFO: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a read did not return after Close")
			}
		}
	}
	if after := openFDs(t); after != before {
		t.Fatalf("fds before %d, after %d", before, after)
	}
	if s := e.Stats(); s.InFlight != 0 {
		t.Fatalf("in flight after the reads returned: %d", s.InFlight)
	}
}

// TestFileExecutorCloseWhileInFlight closes the executor under a blocked read.
func TestFileExecutorCloseWhileInFlight(t *testing.T) {
	e, err := New(WithStrict())
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := e.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { _, err := f.Read(make([]byte, 16)); res <- err }()
	for e.Stats().InFlight == 0 {
		time.Sleep(100 * time.Microsecond)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, ErrClosed) {
		t.Fatalf("read when the executor closed: %v", err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadAt after the executor closed: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close after the executor closed: %v", err)
	}
	if _, err := e.Open(fifo); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after the executor closed: %v", err)
	}
}

func TestFileReadAtContext(t *testing.T) {
	e := fileExecutor(t)
	name := filepath.Join(t.TempDir(), "ctx")
	os.WriteFile(name, []byte("data"), 0o644)
	f, err := e.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	buf := make([]byte, 4)
	if n, err := f.ReadAtContext(ctx, buf, 0); n != 4 || err != nil || string(buf) != "data" {
		t.Fatalf("ReadAtContext with a deadline = %d, %v", n, err)
	}
	cancel()
	// Cancelled before it starts: the kernel may still complete it; either
	// the data or the context's error, never anything else.
	n, err := f.ReadAtContext(ctx, buf, 0)
	if err != nil && !errors.Is(err, context.Canceled) || err == nil && n != 4 {
		t.Fatalf("ReadAtContext with a cancelled context = %d, %v", n, err)
	}
}

// The permission test needs a process without root's override: a child that
// drops to nobody before it opens anything.
func init() {
	childFuncs["filePermission"] = func() error {
		if os.Geteuid() == 0 {
			if err := syscall.Setuid(65534); err != nil {
				return fmt.Errorf("setuid(nobody): %w", err)
			}
		}
		e, err := New(WithStrict())
		if err != nil {
			return err
		}
		defer e.Close()
		_, err = e.Open(os.Getenv("KASYNC_TEST_FILE"))
		if !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("Open of a mode-000 file as uid %d: %v", os.Geteuid(), err)
		}
		fmt.Println("permission denied ok")
		return nil
	}
}

func TestFilePermissionDenied(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	name := filepath.Join(dir, "secret")
	if err := os.WriteFile(name, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KASYNC_TEST_FILE", name)
	if out := runInChild(t, "filePermission"); out != "permission denied ok" {
		t.Fatalf("child: %s", out)
	}
}

// directDir is a directory on a file system with O_DIRECT (not tmpfs).
func directDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/var/tmp", "kasync-direct")
	if err != nil {
		t.Skipf("no /var/tmp for O_DIRECT: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestFileDirect(t *testing.T) {
	e := fileExecutor(t)
	dir := directDir(t)
	name := filepath.Join(dir, "direct")
	data := randBytes(rand.New(rand.NewSource(5)), 3*DirectAlign+100)
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := e.OpenFile(name, os.O_RDWR|unix.O_DIRECT, 0)
	if errors.Is(err, syscall.EINVAL) {
		t.Skipf("O_DIRECT not supported in %s: %v", dir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Logf("O_DIRECT alignment: memory %d, offset/length %d", f.memAlign, f.offAlign)

	buf := AlignedBuffer(2 * DirectAlign)
	if len(buf) != 2*DirectAlign || !isAligned(buf) {
		t.Fatalf("AlignedBuffer: len %d, aligned %v", len(buf), isAligned(buf))
	}
	if n, err := f.ReadAt(buf, DirectAlign); n != len(buf) || err != nil || !bytes.Equal(buf, data[DirectAlign:3*DirectAlign]) {
		t.Fatalf("aligned O_DIRECT ReadAt = %d, %v", n, err)
	}
	big := AlignedBuffer(8 * DirectAlign) // past the end: short, io.EOF
	if n, err := f.ReadAt(big, 0); n != len(data) || err != io.EOF || !bytes.Equal(big[:n], data) {
		t.Fatalf("O_DIRECT ReadAt past the end = %d, %v", n, err)
	}
	reqs := []ReadRequest{{Buf: buf[:DirectAlign], Off: 0}, {Buf: big[:DirectAlign], Off: 4 * DirectAlign}}
	if err := f.ReadBatch(reqs); err != nil || reqs[0].N != DirectAlign || reqs[1].Err != io.EOF {
		t.Fatalf("O_DIRECT ReadBatch: %v %+v", err, reqs)
	}

	// Misaligned buffer address, length and offset, each refused before
	// submission with an error that says what is wrong.
	unaligned := AlignedBuffer(2*DirectAlign + 1)[1:]
	for _, c := range []struct {
		what string
		buf  []byte
		off  int64
	}{
		{"buffer address", unaligned[:DirectAlign], 0},
		{"length", buf[:100], 0},
		{"offset", buf[:DirectAlign], 100},
	} {
		if unaligned := uintptr(f.memAlign) == 1 && c.what == "buffer address"; unaligned {
			continue
		}
		for _, call := range []func() error{
			func() error { _, err := f.ReadAt(c.buf, c.off); return err },
			func() error { _, err := f.WriteAt(c.buf, c.off); return err },
			func() error { return f.ReadBatch([]ReadRequest{{Buf: c.buf, Off: c.off}}) },
		} {
			err := call()
			var ae *AlignmentError
			if !errors.Is(err, syscall.EINVAL) || !errors.As(err, &ae) || ae.What != c.what ||
				!strings.Contains(err.Error(), "aligned to") {
				t.Fatalf("misaligned %s: %v", c.what, err)
			}
		}
	}
	t.Logf("misaligned offset: %v", f.checkDirect("read", buf, 100))

	// An aligned write and its read back.
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	if n, err := f.WriteAt(buf, DirectAlign); n != len(buf) || err != nil {
		t.Fatalf("O_DIRECT WriteAt = %d, %v", n, err)
	}
	got, _ := os.ReadFile(name)
	if !bytes.Equal(got[DirectAlign:3*DirectAlign], buf) {
		t.Fatal("O_DIRECT write not in the file")
	}
}

func isAligned(b []byte) bool {
	return len(b) > 0 && uintptr(unsafe.Pointer(&b[0]))%DirectAlign == 0
}

// TestReadAtCached: a ReadAt the page cache holds is answered without the
// ring; one it does not goes through the ring; one that is half cached
// takes the cached part at once and the rest through the ring; every
// byte is right.
func TestReadAtCached(t *testing.T) {
	e := fileExecutor(t)
	f, data := openRandomFile(t, e, 1<<20, 9)
	read := func(off, n int) uint64 {
		t.Helper()
		before := e.Stats().Submitted
		buf := make([]byte, n)
		if m, err := f.ReadAt(buf, int64(off)); m != n || err != nil {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", n, off, m, err)
		}
		if !bytes.Equal(buf, data[off:off+n]) {
			t.Fatalf("ReadAt(%d bytes, %d): wrong bytes", n, off)
		}
		return e.Stats().Submitted - before
	}
	if ops := read(4096, 8192); ops != 0 {
		t.Errorf("a cached read took %d ring operations", ops)
	}
	// Out of the page cache, and no read-ahead to bring more back in.
	fd := f.sfd.fd
	if err := unix.Fsync(fd); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	if ops := read(0, 4096); ops == 0 {
		t.Skip("the page cache kept the file (FADV_DONTNEED refused): nothing to check")
	}
	if ops := read(0, 4096); ops != 0 {
		t.Errorf("a read cached by the one before took %d ring operations", ops)
	}
	// Half cached: the cached page comes at once, the rest through the ring,
	// every byte right. (How many ring operations it takes is not checked:
	// RWF_NOWAIT may start the read-ahead itself, and when the device is quick
	// the pages are in by the time it looks.)
	read(0, 3*4096)
	// Across the end and at it, once cached: io.EOF without the ring.
	for range 2 {
		before := e.Stats().Submitted
		if m, err := f.ReadAt(make([]byte, 10), 1<<20-5); m != 5 || err != io.EOF {
			t.Errorf("ReadAt across the end = %d, %v; want 5, EOF", m, err)
		}
		if m, err := f.ReadAt(make([]byte, 10), 1<<20); m != 0 || err != io.EOF {
			t.Errorf("ReadAt at the end = %d, %v; want 0, EOF", m, err)
		}
		if m, err := f.ReadAt(make([]byte, 10), 1<<21); m != 0 || err != io.EOF {
			t.Errorf("ReadAt past the end = %d, %v; want 0, EOF", m, err)
		}
		if ops := e.Stats().Submitted - before; ops != 0 {
			t.Logf("reads at the end took %d ring operations (the first pass may bring the last page in)", ops)
		} else {
			return
		}
	}
	t.Errorf("reads at the end of a cached file still take ring operations")
}

// openRandomFile writes size random bytes (from seed) to a temporary file
// and opens it with e; the file is closed when the test ends.
func openRandomFile(t *testing.T, e *Executor, size int, seed int64) (*File, []byte) {
	t.Helper()
	data := randBytes(rand.New(rand.NewSource(seed)), size)
	name := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := e.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}
