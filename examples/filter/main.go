// Command filter is an echo server whose listener admits only clients from
// the networks given with -allow (kasync's net::filter): any other
// connection is closed before the program sees it, and counted.
//
//	filter -addr 127.0.0.1:8080 -allow 127.0.0.1/32,10.0.0.0/8
//
// It prints "listening on ADDR" once it accepts connections, and on SIGINT
// or SIGTERM prints how many connections it dropped and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/kasync-go/kasync/executor"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	allow := flag.String("allow", "127.0.0.0/8,::1/128", "comma-separated networks whose clients are accepted")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "io_uring loops (rings)")
	flag.Parse()
	prefixes, err := parsePrefixes(*allow)
	if err != nil {
		fmt.Fprintln(os.Stderr, "filter:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dropped, err := serve(ctx, *addr, *loops, prefixes, func(a net.Addr) { fmt.Printf("listening on %s\n", a) })
	if err != nil {
		log.Fatalf("filter: %v", err)
	}
	fmt.Printf("dropped %d connections\n", dropped)
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// allowed is the filter: Accept a client inside one of the prefixes.
func allowed(prefixes []netip.Prefix) func(netip.AddrPort) executor.Verdict {
	return func(remote netip.AddrPort) executor.Verdict {
		for _, p := range prefixes {
			if p.Contains(remote.Addr()) {
				return executor.Accept
			}
		}
		return executor.Drop
	}
}

// serve echoes for allowed clients until ctx is done and returns how many
// connections the filter dropped.
func serve(ctx context.Context, addr string, loops int, prefixes []netip.Prefix, ready func(net.Addr)) (uint64, error) {
	e, err := executor.New(executor.WithLoops(loops))
	if err != nil {
		return 0, err
	}
	defer e.Close()
	ln, err := e.Listen("tcp", addr, executor.WithFilter(allowed(prefixes)))
	if err != nil {
		return 0, err
	}
	ready(ln.Addr())
	acceptor, err := e.Spawn(func(context.Context) error {
		for {
			c, err := ln.Accept() // only allowed clients get here
			if err != nil {
				return nil
			}
			e.Spawn(func(context.Context) error {
				defer c.Close()
				_, err := io.Copy(c, c)
				return err
			})
		}
	})
	if err != nil {
		ln.Close()
		return 0, err
	}
	<-ctx.Done()
	ln.Close()
	acceptor.Wait()
	dropped := ln.(executor.DropCounter).Dropped()
	return dropped, e.Close() // ends the connections still open
}
