//go:build linux

package executor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/kasync-go/kasync/executor"
)

// An echo server on io_uring: Listen gives a net.Listener whose connections
// are read and written by io_uring operations.
func ExampleExecutor_Listen() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	ln, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	e.Spawn(func(ctx context.Context) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil // closed
			}
			e.Spawn(func(ctx context.Context) error {
				defer c.Close()
				_, err := io.Copy(c, c) // echo
				return err
			})
		}
	})

	c, err := net.Dial("tcp", ln.Addr().String()) // any client will do
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("hello, io_uring"))
	reply := make([]byte, 15)
	io.ReadFull(c, reply)
	fmt.Println(string(reply))
	// Output: hello, io_uring
}

// A client on io_uring: Dial connects with a CONNECT operation and returns a
// net.Conn.
func ExampleExecutor_Dial() {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // any server will do
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "greetings from the server")
	}()

	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	c, err := e.Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	fmt.Println(string(b), err)
	// Output: greetings from the server <nil>
}

// UDP on io_uring: ReadFrom and WriteTo are RECVMSG and SENDMSG operations.
func ExampleExecutor_ListenPacket() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	server, err := e.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer server.Close()
	client, err := e.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer client.Close()

	client.WriteTo([]byte("ping"), server.LocalAddr())
	buf := make([]byte, 64)
	n, from, _ := server.ReadFrom(buf)
	server.WriteTo([]byte(strings.ToUpper(string(buf[:n]))), from)
	n, _, _ = client.ReadFrom(buf)
	fmt.Println(string(buf[:n]))
	// Output: PING
}

// A listener that admits clients from 127.0.0.1 only. Connections the
// filter drops never reach Accept; they are closed and counted.
func ExampleWithFilter() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	onlyLocal := func(remote netip.AddrPort) executor.Verdict {
		if remote.Addr() == netip.MustParseAddr("127.0.0.1") {
			return executor.Accept
		}
		return executor.Drop
	}
	ln, err := e.Listen("tcp", "127.0.0.1:0", executor.WithFilter(onlyLocal))
	if err != nil {
		panic(err)
	}
	defer ln.Close()

	other := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	dropped, _ := other.Dial("tcp", ln.Addr().String())
	defer dropped.Close()
	local, _ := net.Dial("tcp", ln.Addr().String())
	defer local.Close()

	c, err := ln.Accept() // the client from 127.0.0.2 was dropped on the way
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println("accepted from 127.0.0.1:", c.RemoteAddr().(*net.TCPAddr).IP.Equal(net.IPv4(127, 0, 0, 1)))
	fmt.Println("dropped:", ln.(executor.DropCounter).Dropped())
	// Output:
	// accepted from 127.0.0.1: true
	// dropped: 1
}

// A datagram filter sees each datagram before ReadFrom does.
func ExampleWithPacketFilter() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	noSpam := func(from netip.AddrPort, b []byte) executor.Verdict {
		if strings.HasPrefix(string(b), "spam") {
			return executor.Drop
		}
		return executor.Accept
	}
	pc, err := e.ListenPacket("udp", "127.0.0.1:0", executor.WithPacketFilter(noSpam))
	if err != nil {
		panic(err)
	}
	defer pc.Close()
	c, _ := net.Dial("udp", pc.LocalAddr().String())
	defer c.Close()
	c.Write([]byte("spam, spam, spam"))
	c.Write([]byte("eggs"))
	buf := make([]byte, 64)
	n, _, _ := pc.ReadFrom(buf)
	fmt.Println(string(buf[:n]), pc.(executor.DropCounter).Dropped())
	// Output: eggs 1
}

// io.Copy between two Conns moves the bytes inside the kernel with SPLICE:
// here a one-connection proxy in front of an upper-casing server.
func ExampleConn_ReadFrom() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	upstream, _ := e.Listen("tcp", "127.0.0.1:0")
	defer upstream.Close()
	e.Spawn(func(ctx context.Context) error {
		c, err := upstream.Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		_, err = c.Write([]byte(strings.ToUpper(string(b))))
		return err
	})
	front, _ := e.Listen("tcp", "127.0.0.1:0")
	defer front.Close()
	e.Spawn(func(ctx context.Context) error {
		c, err := front.Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		u, err := e.Dial(ctx, "tcp", upstream.Addr().String())
		if err != nil {
			return err
		}
		defer u.Close()
		go func() {
			io.Copy(u, c) // Conn to Conn: spliced
			u.(*executor.Conn).CloseWrite()
		}()
		io.Copy(c, u)
		return c.(*executor.Conn).CloseWrite()
	})

	c, _ := net.Dial("tcp", front.Addr().String())
	defer c.Close()
	io.WriteString(c, "through the kernel")
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	fmt.Println(string(b))
	fmt.Println("spliced:", e.Stats().SplicedBytes >= 2*18)
	// Output:
	// THROUGH THE KERNEL
	// spliced: true
}

// CloseWrite ends the sending side only: the peer reads EOF and can still
// answer.
func ExampleConn_CloseWrite() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	ln, _ := e.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	e.Spawn(func(ctx context.Context) error {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		req, _ := io.ReadAll(c) // until the client's CloseWrite
		_, err = fmt.Fprintf(c, "got %d bytes", len(req))
		return err
	})
	c, _ := e.Dial(context.Background(), "tcp", ln.Addr().String())
	defer c.Close()
	io.WriteString(c, "the whole request")
	c.(*executor.Conn).CloseWrite()
	resp, _ := io.ReadAll(c)
	fmt.Println(string(resp))
	// Output: got 17 bytes
}

// Sockets can be made inside a network namespace, such as one made with
// `ip netns add blue` (this needs CAP_SYS_ADMIN).
func ExampleWithNamespace() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	blue := executor.WithNamespace("/var/run/netns/blue")
	ln, err := e.Listen("tcp", "127.0.0.1:8080", blue)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	c, err := e.Dial(context.Background(), "tcp", "127.0.0.1:8080", blue)
	if err == nil {
		c.Close()
	}
}

// Dial("udp") gives a connected UDP socket as a net.Conn: each Write is one
// datagram to the peer, each Read one datagram from it.
func ExampleExecutor_Dial_udp() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	srv, err := e.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	c, err := e.Dial(context.Background(), "udp", srv.LocalAddr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 64)
	n, from, _ := srv.ReadFrom(buf)
	srv.WriteTo([]byte("pong to "+string(buf[:n])), from)
	n, _ = c.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output: pong to ping
}

// A listener's deadline makes a blocked Accept give up with a timeout.
func ExampleListener_SetDeadline() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	ln, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = ln.Accept()
	var ne net.Error
	fmt.Println(errors.As(err, &ne) && ne.Timeout())
	// Output: true
}
