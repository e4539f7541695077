//go:build linux

package executor_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/kasync-go/kasync/executor"
)

// timedEcho echoes, and reports why each connection closed.
type timedEcho struct {
	executor.NopHandler
	closed chan error
}

func (h timedEcho) OnData(c *executor.HConn, data []byte) int {
	c.Write(data)
	return len(data)
}

func (h timedEcho) OnClose(c *executor.HConn, err error) { h.closed <- err }

// A server whose connections are closed after 50ms without a byte from the
// client: the silent client is timed out, with an error that is
// os.ErrDeadlineExceeded to errors.Is.
func ExampleServeReadTimeout() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	h := timedEcho{closed: make(chan error, 1)}
	srv, err := e.Serve("tcp", "127.0.0.1:0", h, executor.ServeLoops(1),
		executor.ServeReadTimeout(50*time.Millisecond))
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	err = <-h.closed // the client says nothing
	fmt.Println(err)
	fmt.Println(errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, executor.ErrReadTimeout))
	_, err = c.Read(make([]byte, 1))
	fmt.Println("client:", err)
	// Output:
	// executor: connection read timeout
	// true true
	// client: EOF
}

// idleAfterHello gives each connection 50ms of idleness after its first
// message, and none before it: the per-connection setters override the
// server's defaults.
type idleAfterHello struct{ timedEcho }

func (h idleAfterHello) OnData(c *executor.HConn, data []byte) int {
	c.SetIdleTimeout(50 * time.Millisecond)
	c.SetReadTimeout(0) // the server's default, turned off for this connection
	return h.timedEcho.OnData(c, data)
}

func ExampleHConn_SetIdleTimeout() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	h := idleAfterHello{timedEcho{closed: make(chan error, 1)}}
	srv, err := e.Serve("tcp", "127.0.0.1:0", h, executor.ServeLoops(1),
		executor.ServeReadTimeout(time.Hour), executor.ServeWriteTimeout(time.Second))
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
	err = <-h.closed
	var ne net.Error
	fmt.Println(err, errors.As(err, &ne) && ne.Timeout())
	// Output:
	// hello
	// executor: connection idle timeout true
}
