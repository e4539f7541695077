// Command httpserver serves HTTP with net/http over a kasync listener: every
// connection's reads and writes are io_uring operations. "/" answers
// "Hello, World!" as text/plain.
//
//	httpserver -addr 127.0.0.1:8080 -loops 2
//
// It prints "listening on ADDR" once it accepts connections, and on SIGINT
// or SIGTERM shuts down gracefully (open requests finish) and exits 0.
package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/executor"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "io_uring loops (rings)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, *addr, *loops, func(a net.Addr) { fmt.Printf("listening on %s\n", a) })
	if err != nil {
		log.Fatalf("httpserver: %v", err)
	}
}

var hello = []byte("Hello, World!")

// handler is the whole site.
func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	return mux
}

// serve runs the server on addr until ctx is done, then shuts it down.
func serve(ctx context.Context, addr string, loops int, ready func(net.Addr)) error {
	e, err := executor.New(executor.WithLoops(loops))
	if err != nil {
		return err
	}
	defer e.Close()
	ln, err := e.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The same server as the benchmark's net/http baseline; a server facing
	// the internet would set ReadHeaderTimeout and friends here (they work:
	// a Conn's deadlines are net.Conn's).
	srv := &http.Server{Handler: withDebug(e, handler())}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ready(ln.Addr())
	select {
	case err := <-served: // Serve failed on its own
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx) // closes ln, waits for open requests
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, e.Close())
}

// current is the executor /debug/vars reports on (expvar.Publish is once
// per process, serve may run more than once).
var (
	current     atomic.Pointer[executor.Executor]
	publishOnce sync.Once
)

// withDebug adds /debug/vars (expvar, with the executor's Stats as
// "kasync") and /debug/pprof (whose CPU profiles split by loop: the loops'
// goroutines carry the pprof label kasync.loop) to site.
func withDebug(e *executor.Executor, site http.Handler) http.Handler {
	current.Store(e)
	publishOnce.Do(func() {
		expvar.Publish("kasync", expvar.Func(func() any { return current.Load().Stats() }))
	})
	mux := http.NewServeMux()
	mux.Handle("/", site)
	mux.Handle("/debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
