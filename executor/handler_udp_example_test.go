//go:build linux

package executor_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/kasync-go/kasync/executor"
)

func ExampleExecutor_ServePacket() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close() // would stop the server too
	// OnPacket runs on the loop's thread; data is borrowed, WriteTo copies.
	upper := executor.PacketHandlerFunc(func(w *executor.PacketWriter, from netip.AddrPort, data []byte) {
		w.WriteTo(bytes.ToUpper(data), from)
	})
	srv, err := e.ServePacket("udp", "127.0.0.1:0", upper, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	c, err := net.Dial("udp", srv.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("hello, datagram"))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(buf[:n]))
	// Output: HELLO, DATAGRAM
}
