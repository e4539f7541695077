// Command netproxy is the baseline TCP proxy of the benchmark suite: Go's net
// package, each connection accepted on -addr joined to a new connection to
// -to by a pair of goroutines, one io.Copy each way, the end of each
// direction passed on as a half-close (CloseWrite). It is plain net, as a Go
// program gets it without trying, and that is spliced: io.Copy between two
// *net.TCPConn moves the bytes with splice(2) on Linux (TCPConn.ReadFrom),
// through a pipe, never into user space. It prints "listening on ADDR" once
// it accepts connections.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7001", "address to listen on")
	to := flag.String("to", "", "address to forward to (required)")
	flag.Parse()
	if *to == "" {
		log.Fatal("netproxy: -to is required")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go join(c.(*net.TCPConn), *to)
	}
}

// join copies between c and a new connection to upstream until both
// directions are done.
func join(c *net.TCPConn, upstream string) {
	defer c.Close()
	conn, err := net.Dial("tcp", upstream)
	if err != nil {
		log.Printf("netproxy: %v", err)
		return
	}
	u := conn.(*net.TCPConn)
	defer u.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(u, c)
	}()
	pipe(c, u)
	<-done
}

// pipe copies from src to dst until src ends, then half-closes dst.
func pipe(dst, src *net.TCPConn) {
	io.Copy(dst, src)
	dst.CloseWrite()
}
