package main

import (
	"context"
	"net"
	"time"

	"github.com/kasync-go/kasync/executor"
)

// Mode "handler": the event-driven fast path. Each loop is an OS thread with
// its own ring; echoHandler runs inline with the loop's completions, and
// echoes each read from the receive buffer it arrived in (WriteNoCopy),
// or, for short reads or with output already queued, with one copy into
// the connection's output buffer.
func init() { modes["handler"] = serveHandler }

type echoHandler struct{}

func (echoHandler) OnOpen(*executor.HConn) {}

func (echoHandler) OnData(c *executor.HConn, data []byte) int {
	c.WriteNoCopy(data) // data is borrowed from the receive buffers: sent from there, or copied
	return len(data)
}

func (echoHandler) OnClose(*executor.HConn, error) {}

// handlerGrace is how long open connections may go on after a stop signal.
const handlerGrace = 5 * time.Second

// serveHandler serves echo on addr with loops loops until ctx is done, then
// stops accepting and gives open connections handlerGrace to finish.
func serveHandler(ctx context.Context, addr string, loops int, ready func(net.Addr)) error {
	e, err := newExecutor(1)
	if err != nil {
		return err
	}
	defer e.Close()
	// This process exists to serve: the loops keep their Ps while they wait
	// (see ServeKeepP), sparing a thread hand-off per loop turn.
	srv, err := e.Serve("tcp", addr, echoHandler{}, executor.ServeLoops(loops), executor.ServeKeepP())
	if err != nil {
		return err
	}
	ready(srv.Addr())
	<-ctx.Done()
	grace, cancel := context.WithTimeout(context.Background(), handlerGrace)
	defer cancel()
	srv.Shutdown(grace) // past the grace period, what is still open is closed
	return nil
}
