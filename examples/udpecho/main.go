// Command udpecho is kasync's UDP echo server: it sends every datagram back
// to its sender. Mode "handler" (the default) runs the fast path's
// ServePacket: a PacketHandler per datagram on loops that own their threads,
// multishot RECVMSG into each loop's buffer ring and one SENDMSG per reply;
// mode "conn" reads and writes a net.PacketConn on io_uring (ListenPacket)
// with a task per loop.
//
//	udpecho -addr 127.0.0.1:9000 -loops 2
//
// It prints "listening on ADDR" once it receives. On SIGINT or SIGTERM it
// closes the executor and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/kasync-go/kasync/executor"
)

// echo answers each datagram with its own bytes (WriteTo copies them).
func echo(w *executor.PacketWriter, from netip.AddrPort, data []byte) {
	w.WriteTo(data, from)
}

// serve serves UDP echo on addr with loops loops until ctx is done, calling
// ready once it receives.
func serve(ctx context.Context, mode, addr string, loops, bufSize int, strict bool, ready func(net.Addr)) error {
	opts := []executor.Option{executor.WithLoops(loops)}
	if strict {
		opts = append(opts, executor.WithStrict())
	}
	e, err := executor.New(opts...)
	if err != nil {
		return err
	}
	defer e.Close()
	switch mode {
	case "handler":
		srv, err := e.ServePacket("udp", addr, executor.PacketHandlerFunc(echo),
			executor.ServeLoops(loops), executor.ServeBuffers(bufSize, 128))
		if err != nil {
			return err
		}
		ready(srv.Addr())
		<-ctx.Done()
		srv.Close()
	case "conn":
		pcs := make([]net.PacketConn, loops)
		for i := range pcs {
			a, share := addr, executor.WithReusePort()
			if i > 0 { // the others join the first one's port
				a, share = pcs[0].LocalAddr().String(), executor.WithSharePort()
			}
			if pcs[i], err = e.ListenPacket("udp", a, share); err != nil {
				return err
			}
			pc := pcs[i].(interface {
				ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
				WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
			})
			if _, err := e.Spawn(func(context.Context) error {
				buf := make([]byte, bufSize)
				for {
					n, from, err := pc.ReadFromUDPAddrPort(buf)
					if err != nil {
						return nil // closed
					}
					pc.WriteToUDPAddrPort(buf[:n], from)
				}
			}); err != nil {
				return err
			}
		}
		ready(pcs[0].LocalAddr())
		<-ctx.Done()
		for _, pc := range pcs {
			pc.Close()
		}
	default:
		return fmt.Errorf("unknown mode %q (have handler, conn)", mode)
	}
	return e.Close()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops (one socket each)")
	mode := flag.String("mode", "handler", "server mode: handler, conn")
	size := flag.Int("size", 65507, "largest datagram received whole (longer ones are cut)")
	strict := flag.Bool("strict", false, "fail where io_uring is refused instead of falling back to Go's net")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, *mode, *addr, *loops, *size, *strict, func(a net.Addr) { fmt.Printf("listening on %s\n", a) })
	if err != nil {
		log.Fatalf("udpecho: %v", err)
	}
}
