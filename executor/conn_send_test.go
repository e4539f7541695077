//go:build linux

package executor

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
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
