//go:build linux

package executor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Faults a user meets, against the real kernel.

func init() {
	childFuncs["serveEMFILE"] = serveEMFILE
}

// serveEMFILE runs in a child process (it lowers RLIMIT_NOFILE): a Serve
// whose accept finds no descriptor left logs it at most once a second, and
// accepts the connections waiting once descriptors are free again. The
// backend is KASYNC_BACKEND's.
func serveEMFILE() error {
	// Lowered first, as ulimit -n would: io_uring's accept takes the limit
	// in force when it is prepared, which a multishot accept is once.
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		return err
	}
	lim := unix.Rlimit{Cur: 256, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	opts := []Option{WithStrict()}
	if os.Getenv("KASYNC_BACKEND") == "go" {
		opts = []Option{withGoBackend()}
	}
	var mu sync.Mutex
	var lines []string
	firstLog := make(chan struct{})
	logger := funcLogger(func(line string) {
		if !strings.Contains(line, "accept") {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
		if len(lines) == 1 {
			close(firstLog)
		}
	})
	e, err := New(append(opts, WithLogger(logger))...)
	if err != nil {
		return err
	}
	defer e.Close()
	s, err := e.Serve("tcp", "127.0.0.1:0", &hFuncs{}, ServeLoops(1))
	if err != nil {
		return err
	}
	defer s.Close()
	sa := &unix.SockaddrInet4{Port: s.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}

	// The clients' sockets are made first: connect needs no descriptor.
	const clients = 8
	var cfds []int
	for range clients {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		cfds = append(cfds, fd)
	}
	var fillers []int
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}
	for _, fd := range cfds {
		if err := unix.Connect(fd, sa); err != nil { // into the backlog
			return fmt.Errorf("connect: %w", err)
		}
	}
	select {
	case <-firstLog:
	case <-time.After(30 * time.Second):
		return errors.New("no accept error logged with no descriptor left")
	}
	start := time.Now()
	time.Sleep(2500 * time.Millisecond) // accept fails (and is retried) all along
	mu.Lock()
	n, elapsed := len(lines), time.Since(start)
	msg := strings.Join(lines, "\n")
	mu.Unlock()
	if !strings.Contains(msg, "too many open files") {
		return fmt.Errorf("logged: %s", msg)
	}
	// One at the start, then at most one per full second since.
	if n > 1+int(elapsed/time.Second) {
		return fmt.Errorf("%d log lines in %v with no descriptor left: %s", n, elapsed, msg)
	}
	for _, fd := range fillers {
		unix.Close(fd)
	}
	for i, fd := range cfds { // every waiting connection is served now
		msg := []byte(fmt.Sprintf("client %d", i))
		if _, err := unix.Write(fd, msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(fdReader(fd), got); err != nil || string(got) != string(msg) {
			return fmt.Errorf("echo %q, %v", got, err)
		}
	}
	if a := s.Stats().Accepted; e.Backend() == BackendIOURing && a != clients {
		return fmt.Errorf("accepted %d, want %d", a, clients)
	}
	fmt.Printf("%s: %d log lines in %v\n", e.Backend(), n, elapsed.Round(time.Millisecond))
	return nil
}

type fdReader int

func (f fdReader) Read(b []byte) (int, error) {
	n, err := unix.Read(int(f), b)
	if n <= 0 && err == nil {
		return 0, io.EOF
	}
	return max(n, 0), err
}

// TestServeAcceptEMFILE: a Serve that runs out of descriptors (a child
// process with RLIMIT_NOFILE lowered) logs it at most once a second and
// recovers when descriptors free up, on both backends.
func TestServeAcceptEMFILE(t *testing.T) {
	for _, b := range []string{"io_uring", "go"} {
		t.Run(b, func(t *testing.T) {
			t.Setenv("KASYNC_BACKEND", b)
			t.Log(runInChild(t, "serveEMFILE"))
		})
	}
}

// A connection reset by its peer while output is queued ends with
// ECONNRESET or EPIPE (errors.Is works), and leaves nothing behind.
func TestServeResetWithOutputQueued(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		queued := make(chan struct{})
		closed := make(chan error, 1)
		h := &hFuncs{
			open: func(c *HConn) {
				c.Write(make([]byte, 8<<20)) // far more than the socket buffers hold
				close(queued)
			},
			close: func(c *HConn, err error) { closed <- err },
		}
		s := hServe(t, e, h, ServeLoops(1), ServeOutputLimit(16<<20))
		before := fdCount(t)
		d := net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { // a small window: the output stays queued
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
			})
		}}
		c, err := d.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		<-queued
		buf := make([]byte, 1024)
		if _, err := io.ReadFull(c, buf); err != nil { // the sending has begun
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0) // Close sends a RST
		c.Close()
		err = <-closed
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("OnClose after a reset with output queued: %v, want ECONNRESET or EPIPE", err)
		}
		if st := s.Stats(); st.Conns != 0 {
			t.Fatalf("%d conns open after the reset", st.Conns)
		}
		if after := fdCount(t); after > before {
			t.Fatalf("%d descriptors before the connection, %d after it ended", before, after)
		}
	})
}

// A fast-path ring with a tiny CQ (ServeRingEntries(4): 32 CQEs) and many
// connections at once overflows its CQ; nothing is lost, and the overflow
// is counted.
func TestServeCQOverflow(t *testing.T) {
	e := newTestExecutor(t)
	s := hServe(t, e, &hFuncs{}, ServeLoops(1), ServeRingEntries(4))
	const conns = 200
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs[i] = c
	}
	for round := range 3 {
		for i, c := range cs { // all at once: a CQE per connection in a turn
			if _, err := fmt.Fprintf(c, "%03d:%d", i, round); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range cs {
			want := fmt.Sprintf("%03d:%d", i, round)
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
				t.Fatalf("conn %d round %d: %q, %v", i, round, got, err)
			}
		}
	}
	st := s.Stats()
	if st.Accepted != conns || st.CQDropped != 0 {
		t.Fatalf("accepted %d (want %d), %d CQEs dropped", st.Accepted, conns, st.CQDropped)
	}
	if st.CQOverflows == 0 {
		t.Fatalf("the CQ never overflowed; the test proves nothing: %+v", st)
	}
	t.Logf("%+v", st)
}
