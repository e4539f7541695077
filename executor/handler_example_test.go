//go:build linux

package executor_test

import (
	"fmt"
	"io"
	"net"

	"github.com/kasync-go/kasync/executor"
)

// echo answers every byte it receives, on the loop's thread.
type echo struct{}

func (echo) OnOpen(c *executor.HConn) {}

func (echo) OnData(c *executor.HConn, data []byte) int {
	c.Write(data) // copied: data is only borrowed
	return len(data)
}

func (echo) OnClose(c *executor.HConn, err error) {}

func ExampleExecutor_Serve() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close() // would stop the server too
	srv, err := e.Serve("tcp", "127.0.0.1:0", echo{}, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("hello, fast path"))
	buf := make([]byte, len("hello, fast path"))
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
	// Output: hello, fast path
}
