//go:build linux

package executor_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/kasync-go/kasync/executor"
	"golang.org/x/sys/unix"
)

// shout upper-cases what it gets; NopHandler gives it OnOpen and OnClose.
type shout struct{ executor.NopHandler }

func (shout) OnData(c *executor.HConn, data []byte) int {
	c.Write(bytes.ToUpper(data))
	return len(data)
}

func ExampleNopHandler() {
	e, _ := executor.New()
	defer e.Close()
	srv, err := e.Serve("tcp", "127.0.0.1:0", shout{}, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	c, _ := net.Dial("tcp", srv.Addr().String())
	defer c.Close()
	c.Write([]byte("quiet"))
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
	// Output: QUIET
}

// greeter sends a banner and half-closes: the client reads it to EOF.
type greeter struct{ executor.NopHandler }

func (greeter) OnOpen(c *executor.HConn) {
	c.Write([]byte("hello, and goodbye\n"))
	c.CloseWrite() // after the banner is sent; reading goes on
}

func ExampleHConn_CloseWrite() {
	e, _ := executor.New()
	defer e.Close()
	srv, err := e.Serve("tcp", "127.0.0.1:0", greeter{}, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	c, _ := net.Dial("tcp", srv.Addr().String())
	defer c.Close()
	all, err := io.ReadAll(c)
	fmt.Printf("%q %v\n", all, err)
	// Output: "hello, and goodbye\n" <nil>
}

// noDelay turns Nagle's algorithm off on every connection it gets.
type noDelay struct {
	executor.NopHandler
	got chan int
}

func (h noDelay) OnOpen(c *executor.HConn) {
	c.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		v, _ := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
		h.got <- v
	})
}

func ExampleHConn_Control() {
	e, _ := executor.New()
	defer e.Close()
	h := noDelay{got: make(chan int, 1)}
	srv, err := e.Serve("tcp", "127.0.0.1:0", h, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	c, _ := net.Dial("tcp", srv.Addr().String())
	defer c.Close()
	fmt.Println("TCP_NODELAY:", <-h.got)
	// Output: TCP_NODELAY: 1
}

// polite closes idle connections as soon as Shutdown begins.
type polite struct{ executor.NopHandler }

func (polite) OnShutdown(c *executor.HConn) { c.Close() }

func ExampleShutdownNotifier() {
	e, _ := executor.New()
	defer e.Close()
	srv, err := e.Serve("tcp", "127.0.0.1:0", polite{}, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	c, _ := net.Dial("tcp", srv.Addr().String())
	defer c.Close()
	c.Write([]byte("hi")) // the connection is open, and then idle
	for srv.Stats().Conns == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fmt.Println("shutdown:", srv.Shutdown(ctx)) // does not wait for the minute
	// Output: shutdown: <nil>
}

// resumer writes again when its queued output has drained.
type resumer struct {
	executor.NopHandler
	left int
}

func (r *resumer) OnOpen(c *executor.HConn) { r.more(c) }

func (r *resumer) OnDrain(c *executor.HConn) { r.more(c) }

func (r *resumer) more(c *executor.HConn) {
	for r.left > 0 && c.Queued() <= 64<<10 { // fill to over the limit
		c.Write(make([]byte, 16<<10))
		r.left -= 16 << 10
	}
	if r.left == 0 {
		c.Close() // once what is queued is sent
	}
}

func ExampleDrainer() {
	e, _ := executor.New()
	defer e.Close()
	r := &resumer{left: 4 << 20}
	srv, err := e.Serve("tcp", "127.0.0.1:0", r, executor.ServeLoops(1), executor.ServeOutputLimit(64<<10))
	if err != nil {
		panic(err)
	}
	c, _ := net.Dial("tcp", srv.Addr().String())
	defer c.Close()
	n, err := io.Copy(io.Discard, c) // the server closes after 4 MiB
	fmt.Println(n, err)
	// Output: 4194304 <nil>
}
