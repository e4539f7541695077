//go:build linux

package executor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/executor"
)

// asker is a dialed connection's Handler: it asks, prints the answer and
// the end, and tells done.
type asker struct {
	executor.NopHandler
	done chan<- struct{}
}

func (a asker) OnOpen(c *executor.HConn) { c.Write([]byte("ping")) }

func (a asker) OnData(c *executor.HConn, data []byte) int {
	fmt.Printf("answer %q\n", data)
	c.Close()
	return len(data)
}

func (a asker) OnClose(c *executor.HConn, err error) {
	var oe *net.OpError
	switch {
	case err == nil:
		fmt.Println("closed")
	case errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &oe):
		fmt.Println("refused, no OnOpen:", oe.Op, oe.Err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		fmt.Println("timed out:", err.(*net.OpError).Err)
	default:
		fmt.Println("failed:", err)
	}
	close(a.done)
}

// echoOnce answers one connection on ln with what it reads.
func echoOnce(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	buf := make([]byte, 4)
	io.ReadFull(c, buf)
	c.Write(buf)
}

func ExampleServer_Dial() {
	e, _ := executor.New()
	defer e.Close()
	srv, err := e.Serve("tcp", "127.0.0.1:0", executor.NopHandler{}, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go echoOnce(ln)

	// Connected: OnOpen, then the connection as any other of the loop.
	done := make(chan struct{})
	srv.Dial(context.Background(), 0, "tcp", ln.Addr().String(), asker{done: done})
	<-done

	// Refused: OnClose with net's error, without OnOpen.
	ln.Close()
	done = make(chan struct{})
	srv.Dial(context.Background(), 0, "tcp", ln.Addr().String(), asker{done: done})
	<-done
	// Output:
	// answer "ping"
	// closed
	// refused, no OnOpen: dial connect: connection refused
}

func ExampleServer_Adopt() {
	e, _ := executor.New()
	defer e.Close()
	srv, err := e.Serve("tcp", "127.0.0.1:0", executor.NopHandler{}, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go echoOnce(ln)
	nc, _ := net.DialTimeout("tcp", ln.Addr().String(), time.Second)

	// nc is the loop's from here on, served by asker.
	done := make(chan struct{})
	srv.Adopt(0, nc, asker{done: done})
	<-done
	// Output:
	// answer "ping"
	// closed
}

// holder forwards nothing until it is told to: PauseRead in OnOpen, and
// ResumeRead from another goroutine through Do.
type holder struct {
	executor.NopHandler
	opened chan *executor.HConn
}

func (h holder) OnOpen(c *executor.HConn) {
	c.PauseRead()
	h.opened <- c
}

func (h holder) OnData(c *executor.HConn, data []byte) int {
	fmt.Printf("got %q\n", data)
	c.Close()
	return len(data)
}

func ExampleHConn_PauseRead() {
	e, _ := executor.New()
	defer e.Close()
	h := holder{opened: make(chan *executor.HConn, 1)}
	srv, err := e.Serve("tcp", "127.0.0.1:0", h, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	c, _ := net.Dial("tcp", srv.Addr().String())
	defer c.Close()
	hc := <-h.opened
	c.Write([]byte("held"))
	time.Sleep(50 * time.Millisecond) // nothing comes while paused
	fmt.Println("resuming")
	hc.Do(func(c *executor.HConn) { c.ResumeRead() })
	io.ReadAll(c) // to the server's close
	// Output:
	// resuming
	// got "held"
}

// answerAtEOF reads a question to the client's FIN, then answers: a
// HalfCloser keeps the connection open for output after the FIN.
type answerAtEOF struct {
	executor.NopHandler
	n *int
}

func (a answerAtEOF) OnData(c *executor.HConn, data []byte) int {
	*a.n += len(data)
	return len(data)
}

func (a answerAtEOF) OnReadEOF(c *executor.HConn) {
	fmt.Fprintf(c, "you sent %d bytes", *a.n)
	c.CloseWrite() // both FINs: the connection closes by itself
}

func ExampleHalfCloser() {
	e, _ := executor.New()
	defer e.Close()
	srv, err := e.Serve("tcp", "127.0.0.1:0", answerAtEOF{n: new(int)}, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	c, _ := net.Dial("tcp", srv.Addr().String())
	defer c.Close()
	c.Write([]byte("how many?"))
	c.(*net.TCPConn).CloseWrite()
	all, _ := io.ReadAll(c)
	fmt.Println(string(all))
	// Output: you sent 9 bytes
}

func ExampleHConn_Server() {
	e, _ := executor.New()
	defer e.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go echoOnce(ln)
	done := make(chan struct{})
	// From a handler: dial beside the connection, on its own loop.
	opener := openFunc(func(c *executor.HConn) {
		c.Server().Dial(context.Background(), c.Loop(), "tcp", ln.Addr().String(), asker{done: done})
	})
	srv, err := e.Serve("tcp", "127.0.0.1:0", opener, executor.ServeLoops(1))
	if err != nil {
		panic(err)
	}
	c, _ := net.Dial("tcp", srv.Addr().String())
	defer c.Close()
	<-done
	// Output:
	// answer "ping"
	// closed
}

// openFunc is a Handler that calls itself in OnOpen.
type openFunc func(c *executor.HConn)

func (f openFunc) OnOpen(c *executor.HConn)             { f(c) }
func (openFunc) OnData(_ *executor.HConn, b []byte) int { return len(b) }
func (openFunc) OnClose(*executor.HConn, error)         {}
