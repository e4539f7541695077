//go:build linux

package executor

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// offsetBytes returns n bytes that differ with their offset, so a lost,
// doubled or reordered chunk changes the hash.
func offsetBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

// TestConnWriteBehindIntegrity writes a stream in chunks of every size
// class, below and above sendBehindMax, to a reader that reads in small
// pieces (so sends are taken in part and continued), then half-closes: the
// reader must see every byte in order, then EOF.
func TestConnWriteBehindIntegrity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		_, c, s := listenAndDial(t, e, "tcp", "127.0.0.1:0")
		data := offsetBytes(24 << 20)
		sizes := []int{1, 63, 64, 1000, 4096, 16 << 10, sendBehindMax, sendBehindMax + 1, 200 << 10}
		done := make(chan error, 1)
		go func() {
			off := 0
			for i := 0; off < len(data); i++ {
				n := min(sizes[i%len(sizes)], len(data)-off)
				m, err := c.Write(data[off : off+n])
				if err != nil || m != n {
					done <- err
					return
				}
				off += n
			}
			done <- c.(interface{ CloseWrite() error }).CloseWrite()
		}()
		h := sha256.New()
		buf := make([]byte, 3000)
		total := 0
		for {
			n, err := s.Read(buf)
			h.Write(buf[:n])
			total += n
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256(data); total != len(data) || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("read %d bytes of %d, hash differs: %v", total, len(data), !bytes.Equal(h.Sum(nil), want[:]))
		}
	})
}

// TestConnWriteBehindCloseDelivers fills the socket of a peer that does
// not read until a Write's deadline passes, then closes: as with net, every
// byte a Write said it wrote arrives, then EOF, and the descriptor is
// closed once they have.
func TestConnWriteBehindCloseDelivers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		_, c, s := listenAndDial(t, e, "tcp", "127.0.0.1:0")
		before := fdCount(t)
		data := offsetBytes(64 << 20)
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		off := 0
		for off < len(data) {
			n, err := c.Write(data[off : off+16<<10])
			off += n
			if isTimeout(err) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if off == len(data) {
			t.Fatal("the peer's socket never filled")
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[:off]) {
			t.Fatalf("peer read %d bytes, want the %d written, or they differ", len(got), off)
		}
		waitFDCount(t, before-1)
		if kc, ok := c.(*Conn); ok { // io_uring: the SEND ended, so its linger timer is gone
			kc.sq.mu.Lock()
			armed := kc.sq.linger != nil
			kc.sq.mu.Unlock()
			if armed {
				t.Fatal("the linger timer outlived the SEND it bounds")
			}
		}
	})
}

// TestConnWriteBehindDeadlineAndReset: with a peer that never reads, a Write
// that waits for the queued send is cut short by the write deadline (and
// loses nothing it said it wrote); when the peer then resets, the writes
// fail with the reset, and after Close the descriptor is gone.
func TestConnWriteBehindDeadlineAndReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		peer, c := acceptFromNet(t, e)
		before := fdCount(t)
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		chunk := make([]byte, 32<<10)
		var werr error
		for werr == nil {
			_, werr = c.Write(chunk)
		}
		var oe *net.OpError
		if !isTimeout(werr) || !errors.As(werr, &oe) || oe.Op != "write" {
			t.Fatalf("Write to a stalled peer past the deadline: %v", werr)
		}
		c.SetWriteDeadline(time.Time{})
		peer.SetLinger(0)
		peer.Close() // unread data: the peer's kernel resets the connection
		for i := 0; i < 100 && werr != nil && isTimeout(werr); i++ {
			_, werr = c.Write(chunk)
		}
		for i := 0; i < 100 && werr == nil; i++ {
			_, werr = c.Write(chunk)
		}
		if !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) {
			t.Fatalf("Write after the peer's reset: %v", werr)
		}
		if !errors.As(werr, &oe) || oe.Op != "write" {
			t.Fatalf("error %#v is no write *net.OpError", werr)
		}
		c.Close()
		waitFDCount(t, before-1)
	})
}

// waitFDCount waits (up to 10 s) for the process to hold want descriptors.
func waitFDCount(t *testing.T, want int) {
	t.Helper()
	for i := 0; ; i++ {
		n := fdCount(t)
		if n <= want {
			return
		}
		if i == 1000 {
			t.Fatalf("%d descriptors open, want %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeUntilStuck writes chunks of size to c from a goroutine until a
// Write has not returned for 300 ms (the peer does not read), and returns
// the channel on which that Write's error arrives.
func writeUntilStuck(c net.Conn, size int) <-chan error {
	errc := make(chan error, 1)
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	go func() {
		chunk := make([]byte, size)
		for {
			_, err := c.Write(chunk)
			last.Store(time.Now().UnixNano())
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	for time.Since(time.Unix(0, last.Load())) < 300*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
	}
	return errc
}

// TestConnWriteAcrossExecutorClose: a Write stuck on a peer that does not
// read, whether it waits for the write-behind SEND (32 KiB) or for its own
// (256 KiB), returns net.ErrClosed in a *net.OpError when the executor
// closes, not the cancellation that ended the SEND.
func TestConnWriteAcrossExecutorClose(t *testing.T) {
	for _, size := range []int{32 << 10, 256 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, e *Executor) {
				_, c := acceptFromNet(t, e)
				errc := writeUntilStuck(c, size)
				e.Close()
				err := <-errc
				var oe *net.OpError
				if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != "write" {
					t.Fatalf("Write across the executor's Close: %v, want a write *net.OpError with net.ErrClosed", err)
				}
				if oe.Addr == nil || addrPortOf(oe.Addr).Port() == 0 {
					t.Fatalf("%v: the error does not name the peer's address", err)
				}
			}, WithLoops(1))
		})
	}
}

// TestConnWriteBehindExecutorCloseStopsLinger: connections are closed while
// peers that read slowly still take their write-behind SENDs part by part
// (small socket buffers), so each SEND lingers; then the executor closes
// and the peers stop reading. The executor's Close ends those SENDs (and
// the parts not yet sent) and returns, rather than waiting out the 30 s
// linger.
func TestConnWriteBehindExecutorCloseStopsLinger(t *testing.T) {
	small := func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	}
	for iter := range 5 {
		forEachBackend(t, func(t *testing.T, e *Executor) {
			ln, err := e.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			const n = 20
			var stop atomic.Bool
			var wg sync.WaitGroup
			conns, peers := make([]net.Conn, n), make([]net.Conn, n)
			for i := range n {
				d := net.Dialer{Control: small}
				if peers[i], err = d.Dial("tcp", ln.Addr().String()); err != nil {
					t.Fatal(err)
				}
				defer peers[i].Close()
				if conns[i], err = ln.Accept(); err != nil {
					t.Fatal(err)
				}
				rc, _ := conns[i].(syscall.Conn).SyscallConn()
				rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 4096) })
				wg.Add(2)
				go func(c net.Conn) { // until Close
					defer wg.Done()
					chunk := make([]byte, 64<<10)
					for {
						if _, err := c.Write(chunk); err != nil {
							return
						}
					}
				}(conns[i])
				go func(p net.Conn) { // slowly, then not at all
					defer wg.Done()
					buf := make([]byte, 2048)
					for !stop.Load() {
						p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
						p.Read(buf)
					}
				}(peers[i])
			}
			time.Sleep(200 * time.Millisecond)
			for _, c := range conns {
				c.Close() // each with a SEND in flight: it lingers
			}
			closed := make(chan struct{})
			go func() { e.Close(); close(closed) }()
			time.Sleep(2 * time.Millisecond)
			stop.Store(true)
			select {
			case <-closed:
			case <-time.After(10 * time.Second): // well short of the linger
				t.Errorf("iteration %d: the executor's Close waited for SENDs to peers that stopped reading", iter)
				for _, p := range peers {
					p.(*net.TCPConn).SetLinger(0)
					p.Close()
				}
				<-closed
			}
			wg.Wait()
		}, WithLoops(1))
	}
}
