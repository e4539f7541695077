// Command httpfast serves HTTP/1.1 plaintext on kasync's event-driven fast
// path: "/" answers "Hello, World!" (text/plain, with Date and
// Content-Length), keep-alive and pipelined requests included.
//
//	go run ./examples/httpfast -addr 127.0.0.1:8080 -loops 2
//
// It prints "listening on ADDR" once it accepts connections, and stops
// gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/executor"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops (threads)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *loops); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr string, loops int) error {
	e, err := executor.New(executor.WithLoops(1))
	if err != nil {
		return err
	}
	defer e.Close()
	// This process exists to serve: the loops keep their Ps while they wait
	// (see ServeKeepP), sparing a thread hand-off per loop turn.
	srv, err := e.Serve("tcp", addr, newServer(), executor.ServeLoops(loops), executor.ServeKeepP())
	if err != nil {
		return err
	}
	fmt.Println("listening on", srv.Addr())
	<-ctx.Done()
	// Stop accepting; give open connections a moment to finish.
	grace, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(grace)
	return nil
}
