package main

import (
	"context"
	"net"
	"sync"
	"time"
)

// Mode "conn": goroutine-style I/O. One task accepts; each connection gets a
// task of its own that reads and writes it like any net.Conn, the reads and
// writes being io_uring operations underneath.
func init() { modes["conn"] = serveConns }

// grace is how long open connections may go on after a stop signal.
const grace = 5 * time.Second

// serveConns serves echo on addr with loops loops until ctx is done.
func serveConns(ctx context.Context, addr string, loops int, ready func(net.Addr)) error {
	e, err := newExecutor(loops)
	if err != nil {
		return err
	}
	defer e.Close()
	ln, err := e.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ready(ln.Addr())
	var open sync.WaitGroup
	acceptor, err := e.Spawn(func(context.Context) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil // the listener was closed
			}
			open.Add(1)
			if _, err := e.Spawn(func(context.Context) error {
				defer open.Done()
				defer c.Close()
				return echo(c)
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
	ln.Close() // stop accepting
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
	return e.Close() // ends what is still open
}

// echo writes back what c sends until c's peer closes.
func echo(c net.Conn) error {
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return nil
			}
		}
		if err != nil {
			return nil
		}
	}
}
