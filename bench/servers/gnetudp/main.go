// Command gnetudp is the gnet v2 UDP echo server of the benchmark suite: one
// event loop per -loops, each datagram written straight back to its sender
// from OnTraffic. It prints "listening on ADDR" once gnet has booted.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

type echoServer struct {
	gnet.BuiltinEventEngine
	addr string
}

func (s *echoServer) OnBoot(gnet.Engine) gnet.Action {
	fmt.Fprintf(os.Stdout, "listening on %s\n", s.addr)
	return gnet.None
}

// OnTraffic gets one datagram; c.Write sends it back to where it came from.
func (s *echoServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, err := c.Next(-1)
	if err != nil {
		return gnet.None
	}
	c.Write(buf)
	return gnet.None
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops")
	flag.Parse()
	err := gnet.Run(&echoServer{addr: *addr}, "udp://"+*addr,
		gnet.WithNumEventLoop(*loops),
		gnet.WithLogLevel(logging.ErrorLevel))
	if err != nil {
		log.Fatal(err)
	}
}
