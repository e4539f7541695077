// Command proxy is a TCP proxy on kasync: each connection accepted on -listen
// is joined to a new connection to -to. With -mode goroutine (the default)
// each direction is an io.Copy, which between kasync connections moves the
// bytes inside the kernel (SPLICE); with -mode handler both connections are
// on the event-driven fast path, on one loop, forwarding to each other with
// backpressure both ways and half-close carried through (handler.go).
//
//	proxy -listen 127.0.0.1:8081 -to 127.0.0.1:8080 [-mode handler]
//
// It prints "listening on ADDR" once it accepts connections, and on SIGINT
// or SIGTERM stops accepting, lets open connections finish for a while, and
// exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/executor"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	to := flag.String("to", "", "address to forward to (required)")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "io_uring loops (rings)")
	mode := flag.String("mode", "goroutine", "goroutine (io.Copy, spliced) or handler (the fast path)")
	flag.Parse()
	if *to == "" {
		fmt.Fprintln(os.Stderr, "proxy: -to is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *mode {
	case "goroutine":
		err = serve(ctx, *listen, *to, *loops, func(a net.Addr) { fmt.Printf("listening on %s\n", a) })
	case "handler":
		err = serveHandler(ctx, *listen, *to, *loops, func(a string) { fmt.Printf("listening on %s\n", a) })
	default:
		fmt.Fprintf(os.Stderr, "proxy: -mode %q: want goroutine or handler\n", *mode)
		os.Exit(2)
	}
	if err != nil {
		log.Fatalf("proxy: %v", err)
	}
}

// grace is how long open connections may go on after a stop signal.
const grace = 5 * time.Second

// serve proxies connections on listen to upstream until ctx is done.
func serve(ctx context.Context, listen, upstream string, loops int, ready func(net.Addr)) error {
	e, err := executor.New(executor.WithLoops(loops))
	if err != nil {
		return err
	}
	defer e.Close()
	ln, err := e.Listen("tcp", listen)
	if err != nil {
		return err
	}
	ready(ln.Addr())
	var open sync.WaitGroup
	acceptor, err := e.Spawn(func(context.Context) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil
			}
			open.Add(1)
			if _, err := e.Spawn(func(ctx context.Context) error {
				defer open.Done()
				return join(ctx, e, c, upstream)
			}); err != nil {
				open.Done()
				c.Close()
			}
		}
	})
	if err != nil {
		ln.Close()
		return err
	}
	<-ctx.Done()
	ln.Close()
	acceptor.Wait()
	finished := make(chan struct{})
	go func() {
		open.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(grace):
	}
	return e.Close()
}

// join copies between c and a new connection to upstream until both
// directions are done; each direction's end is passed on as a half-close.
func join(ctx context.Context, e *executor.Executor, c net.Conn, upstream string) error {
	defer c.Close()
	u, err := e.Dial(ctx, "tcp", upstream)
	if err != nil {
		return err
	}
	defer u.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(u, c) // spliced: both are *executor.Conn
		closeWrite(u)
	}()
	io.Copy(c, u)
	closeWrite(c)
	wg.Wait()
	return nil
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
