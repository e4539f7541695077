// Command echo is kasync's echo server: it writes back whatever each
// connection sends. It has modes, each in a file of its own that registers
// itself in modes: "conn" (conn.go) serves every connection with a task that
// reads and writes a net.Conn on io_uring; "handler" (handler.go) runs the
// event-driven fast path. The default is "handler" where it is built in,
// else "conn".
//
//	echo -addr 127.0.0.1:8080 -loops 2 -mode conn
//
// It prints "listening on ADDR" once it accepts connections. On SIGINT or
// SIGTERM it stops accepting, lets open connections finish for a while,
// closes the executor and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"github.com/kasync-go/kasync/executor"
)

// modes maps a mode's name to its server: it serves echo on addr with loops
// rings until ctx is done, calling ready once it listens.
var modes = map[string]func(ctx context.Context, addr string, loops int, ready func(net.Addr)) error{}

// strict makes the executor fail where io_uring is refused, instead of
// falling back to Go's net (-strict).
var strict bool

// newExecutor starts the executor a mode serves on.
func newExecutor(loops int) (*executor.Executor, error) {
	opts := []executor.Option{executor.WithLoops(loops)}
	if strict {
		opts = append(opts, executor.WithStrict())
	}
	return executor.New(opts...)
}

func main() {
	defaultMode := "conn"
	if _, ok := modes["handler"]; ok {
		defaultMode = "handler"
	}
	var names []string
	for name := range modes {
		names = append(names, name)
	}
	sort.Strings(names)
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "io_uring loops (rings)")
	mode := flag.String("mode", defaultMode, "server mode: "+strings.Join(names, ", "))
	flag.BoolVar(&strict, "strict", false, "fail where io_uring is refused instead of falling back to Go's net")
	flag.Parse()
	serve, ok := modes[*mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "echo: unknown mode %q (have %s)\n", *mode, strings.Join(names, ", "))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, *addr, *loops, func(a net.Addr) { fmt.Printf("listening on %s\n", a) })
	if err != nil {
		log.Fatalf("echo: %v", err)
	}
}
