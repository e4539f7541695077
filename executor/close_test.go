//go:build linux

package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openIOFDs returns the process's descriptors that are sockets, pipes or
// files, leaving out anonymous inodes (rings, eventfds, Go's epoll), which
// an Executor has from New to Close.
func openIOFDs(t testing.TB) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string)
	for _, ent := range ents {
		l, err := os.Readlink("/proc/self/fd/" + ent.Name())
		if err != nil || strings.HasPrefix(l, "anon_inode:") || l == "/proc/"+fmt.Sprint(os.Getpid())+"/fd" {
			continue // gone already, a ring's, or ReadDir's own
		}
		fds[ent.Name()] = l
	}
	return fds
}

// waitFDs waits, with a generous bound, until the descriptors open are
// back to want's count, and fails listing the extra ones if not.
func waitFDs(t testing.TB, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := openIOFDs(t)
		if len(got) <= len(want) {
			return
		}
		if time.Now().After(deadline) {
			var extra []string
			for fd, l := range got {
				if want[fd] != l {
					extra = append(extra, fd+"->"+l)
				}
			}
			t.Fatalf("%d descriptors open, want %d; extra: %v", len(got), len(want), extra)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isExecClosed says whether err is what a call cut short by, or made after,
// the executor's Close returns.
func isExecClosed(err error) bool { return err != nil && errors.Is(err, ErrClosed) }

// TestCloseStopsEverything: the executor's Close stops every blocked call
// (conn reads, a write on a full socket buffer, Accept, ReadFrom, a pipe
// Read) with ErrClosed, refuses new work with ErrClosed, leaves old
// objects failing with ErrClosed, and closes every descriptor it made.
func TestCloseStopsEverything(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		base := openIOFDs(t)
		ln, err := e.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		const nconns = 500
		type result struct {
			what string
			err  error
		}
		results := make(chan result, 2*nconns+10)
		var conns []net.Conn
		for i := 0; i < nconns; i++ {
			c, err := e.Dial(context.Background(), "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c, s)
			go func() {
				_, err := c.Read(make([]byte, 1))
				results <- result{"conn Read", err}
			}()
		}
		// A Write blocked on a full socket buffer: the peer does not read.
		go func() {
			_, err := conns[0].Write(make([]byte, 64<<20))
			results <- result{"conn Write", err}
		}()
		ln2, err := e.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := ln2.Accept()
			results <- result{"Accept", err}
		}()
		pc, err := e.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, _, err := pc.ReadFrom(make([]byte, 64))
			results <- result{"ReadFrom", err}
		}()
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		pipeW := p[1]
		pf := e.NewFile(uintptr(p[0]), "pipe")
		go func() {
			_, err := pf.Read(make([]byte, 1))
			results <- result{"pipe File.Read", err}
		}()
		tmp := filepath.Join(t.TempDir(), "f")
		f, err := e.Create(tmp)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // let the calls block (not needed for the checks)

		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(10 * time.Second)
		for i := 0; i < nconns+4; i++ {
			select {
			case r := <-results:
				if !isExecClosed(r.err) {
					t.Errorf("blocked %s returned %v, want ErrClosed", r.what, r.err)
				}
				if r.what == "pipe File.Read" {
					var pe *os.PathError
					if !errors.As(r.err, &pe) {
						t.Errorf("pipe File.Read: %#v, want a *fs.PathError", r.err)
					}
				} else {
					var oe *net.OpError
					if !errors.As(r.err, &oe) || !errors.Is(r.err, net.ErrClosed) {
						t.Errorf("%s: %#v, want a *net.OpError, net.ErrClosed", r.what, r.err)
					}
				}
			case <-timeout:
				t.Fatalf("%d of %d blocked calls still blocked 10 s after Close", nconns+4-i, nconns+4)
			}
		}

		// New work fails with ErrClosed.
		if _, err := e.Listen("tcp", "127.0.0.1:0"); !isExecClosed(err) {
			t.Errorf("Listen after Close: %v", err)
		}
		if _, err := e.ListenPacket("udp", "127.0.0.1:0"); !isExecClosed(err) {
			t.Errorf("ListenPacket after Close: %v", err)
		}
		if _, err := e.Dial(context.Background(), "tcp", ln.Addr().String()); !isExecClosed(err) {
			t.Errorf("Dial after Close: %v", err)
		}
		if _, err := e.Open(tmp); !isExecClosed(err) {
			t.Errorf("Open after Close: %v", err)
		}
		if _, err := e.OpenFile(tmp, os.O_RDWR, 0); !isExecClosed(err) {
			t.Errorf("OpenFile after Close: %v", err)
		}
		if _, err := e.Create(tmp); !isExecClosed(err) {
			t.Errorf("Create after Close: %v", err)
		}
		if _, err := e.RegisterBuffers(1, 4096); !isExecClosed(err) {
			t.Errorf("RegisterBuffers after Close: %v", err)
		}
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		unix.Close(p[1])
		nf := e.NewFile(uintptr(p[0]), "pipe2")
		if _, err := nf.Read(make([]byte, 1)); !isExecClosed(err) {
			t.Errorf("Read of a NewFile after Close: %v", err)
		}
		nf.Close()

		// Old objects fail with ErrClosed.
		if _, err := conns[2].Write([]byte("x")); !isExecClosed(err) {
			t.Errorf("conn Write after Close: %v", err)
		}
		if _, err := conns[3].Read(make([]byte, 1)); !isExecClosed(err) {
			t.Errorf("conn Read after Close: %v", err)
		}
		if _, err := ln.Accept(); !isExecClosed(err) {
			t.Errorf("Accept after Close: %v", err)
		}
		if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); !isExecClosed(err) {
			t.Errorf("PacketConn WriteTo after Close: %v", err)
		}
		if _, err := f.Write([]byte("x")); !isExecClosed(err) {
			t.Errorf("File Write after Close: %v", err)
		}
		if _, err := f.ReadAt(make([]byte, 1), 0); !isExecClosed(err) {
			t.Errorf("File ReadAt after Close: %v", err)
		}
		for _, c := range conns {
			c.Close()
		}
		ln.Close()
		ln2.Close()
		pc.Close()
		pf.Close()
		f.Close()
		unix.Close(pipeW)
		waitFDs(t, base)
	})
}

// TestCloseClosesAcceptQueue: connections the kernel accepted that Accept
// never returned are closed by the executor's Close (and by the listener's).
func TestCloseClosesAcceptQueue(t *testing.T) {
	for _, how := range []string{"Executor.Close", "Listener.Close"} {
		t.Run(how, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, e *Executor) {
				base := openIOFDs(t)
				ln, err := e.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				// One Accept arms the io_uring listener's multishot accept,
				// which then queues what the kernel accepts.
				var clients []net.Conn
				dial := func() {
					c, err := net.Dial("tcp", ln.Addr().String())
					if err != nil {
						t.Fatal(err)
					}
					clients = append(clients, c)
				}
				dial()
				s, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				const n = 10
				for range n {
					dial()
				}
				if kl, ok := ln.(*Listener); ok {
					deadline := time.Now().Add(10 * time.Second)
					for {
						kl.mu.Lock()
						queued := len(kl.queue) - kl.qhead
						kl.mu.Unlock()
						if queued == n {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("%d connections queued, want %d", queued, n)
						}
						time.Sleep(time.Millisecond)
					}
				}
				if how == "Executor.Close" {
					e.Close()
				} else {
					ln.Close()
				}
				for _, c := range clients {
					c.Close()
				}
				waitFDs(t, base)
				e.Close()
			})
		})
	}
}

// TestCloseStopsServe: the executor's Close stops a Server (its watch task)
// and closes its connections, on both backends.
func TestCloseStopsServe(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		base := openIOFDs(t)
		s, err := e.Serve("tcp", "127.0.0.1:0", &hFuncs{}, ServeLoops(2))
		if err != nil {
			t.Fatal(err)
		}
		c := hDial(t, s)
		hRoundTrip(t, c, []byte("before close"))
		e.Close()
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Server not done 10 s after the executor's Close")
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("client Read after Close: %v, want EOF or reset", err)
		}
		c.Close()
		waitFDs(t, base)
	})
}

// TestConnDialedThenExecutorClose: the executor's Close reaches a Conn that
// Dial returned in another goroutine, with nothing between them to order
// their memory: what Close touches (the address look-up before it marks
// the descriptor closed) must have been set before the Conn was published.
// Under -race a field set after registering shows as a data race.
func TestConnDialedThenExecutorClose(t *testing.T) {
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	for range 3 {
		forEachBackend(t, func(t *testing.T, e *Executor) {
			release, done := make(chan struct{}), make(chan error, 1)
			go func() {
				c, err := e.Dial(context.Background(), "tcp", pl.Addr().String())
				if err == nil {
					<-release
					_, err = c.Write([]byte("x"))
					c.Close()
				}
				done <- err
			}()
			p, err := pl.Accept() // Dial's connect is done
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			time.Sleep(50 * time.Millisecond) // and Dial has returned, unordered with this goroutine
			e.Close()
			close(release)
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write on a Conn the executor closed: %v, want net.ErrClosed", err)
			}
		}, WithLoops(1))
	}
}
