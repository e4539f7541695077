//go:build linux

package ring

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newRing sets up a ring that is closed when the test ends.
func newRing(t testing.TB, entries uint32, opts ...Option) *Ring {
	t.Helper()
	r, err := New(entries, opts...)
	if err != nil {
		t.Fatalf("New(%d): %v", entries, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// sqe gets an SQE or fails the test.
func sqe(t testing.TB, r *Ring) *SQE {
	t.Helper()
	s, err := r.GetSQE()
	if err != nil {
		t.Fatalf("GetSQE: %v", err)
	}
	return s
}

// submit submits and checks that the kernel took want SQEs.
func submit(t testing.TB, r *Ring, want int) {
	t.Helper()
	n, err := r.Submit()
	if err != nil || n != want {
		t.Fatalf("Submit = %d, %v; want %d", n, err, want)
	}
}

// reap waits (at most 5 s in all) for n CQEs, consumes them and returns copies.
func reap(t testing.TB, r *Ring, n int) []CQE {
	t.Helper()
	out := make([]CQE, 0, n)
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n {
		c, err := r.WaitCQETimeout(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for CQE %d of %d: %v (got %+v)", len(out)+1, n, err, out)
		}
		out = append(out, *c)
		r.SeenCQE(c)
	}
	return out
}

// run submits everything prepared and returns the next n CQEs.
func run(t testing.TB, r *Ring, n int) []CQE {
	t.Helper()
	if _, err := r.Submit(); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return reap(t, r, n)
}

// byUD finds the CQE with user data ud.
func byUD(t testing.TB, cqes []CQE, ud uint64) CQE {
	t.Helper()
	for _, c := range cqes {
		if c.UserData == ud {
			return c
		}
	}
	t.Fatalf("no CQE with user data %d in %+v", ud, cqes)
	return CQE{}
}

// noCQE checks that no completion arrives within d.
func noCQE(t testing.TB, r *Ring, d time.Duration) {
	t.Helper()
	if c, err := r.WaitCQETimeout(d); !errors.Is(err, syscall.ETIME) {
		t.Fatalf("expected no CQE, got %+v, %v", c, err)
	}
}

// wantRes checks a CQE's result.
func wantRes(t testing.TB, c CQE, res int32) {
	t.Helper()
	if c.Res != res {
		t.Fatalf("CQE user data %d: Res %d (%v), want %d", c.UserData, c.Res, c.Err(), res)
	}
}

// wantErr checks that a CQE failed with errno.
func wantErr(t testing.TB, c CQE, errno syscall.Errno) {
	t.Helper()
	if !errors.Is(c.Err(), errno) {
		t.Fatalf("CQE user data %d: Res %d (%v), want %v", c.UserData, c.Res, c.Err(), errno)
	}
}

func closeFd(t testing.TB, fd int) {
	t.Cleanup(func() { unix.Close(fd) })
}

func pipe(t testing.TB) (rd, wr int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	closeFd(t, p[0])
	closeFd(t, p[1])
	return p[0], p[1]
}

// tempFile creates a file holding content and returns its path and an O_RDWR fd.
func tempFile(t testing.TB, content string) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, fd)
	return path, fd
}

func cstr(t testing.TB, s string) *byte {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// listen opens a TCP listener on 127.0.0.1 and returns its fd and port.
func listen(t testing.TB) (int, int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}

// dial connects a blocking TCP socket to 127.0.0.1:port (the kernel completes
// the handshake from the listener's backlog, so this does not wait for accept).
func dial(t testing.TB, port int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	return fd
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server int) {
	t.Helper()
	ln, port := listen(t)
	client = dial(t, port)
	server, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, server)
	return client, server
}

// sockaddr4 builds a raw IPv4 loopback address with port in network order.
func sockaddr4(port int) *unix.RawSockaddrInet4 {
	sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte{127, 0, 0, 1}}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	return sa
}

func readAll(t testing.TB, fd int, n int) string {
	t.Helper()
	buf := make([]byte, n)
	got := 0
	for got < n {
		m, err := unix.Read(fd, buf[got:])
		if err != nil || m == 0 {
			t.Fatalf("read fd %d: %d, %v (have %q)", fd, m, err, buf[:got])
		}
		got += m
	}
	return string(buf)
}

func write(t testing.TB, fd int, s string) {
	t.Helper()
	if n, err := unix.Write(fd, []byte(s)); err != nil || n != len(s) {
		t.Fatalf("write fd %d: %d, %v", fd, n, err)
	}
}

// countFDs counts this process's open file descriptors.
func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkFDLeak fails the test if it ends with more open fds than it started
// with. Register it first so that it runs after every other cleanup.
func checkFDLeak(t *testing.T) {
	before := countFDs(t)
	t.Cleanup(func() {
		if after := countFDs(t); after != before {
			t.Errorf("fd leak: %d open fds before the test, %d after", before, after)
		}
	})
}
