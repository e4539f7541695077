// Command gnetecho is the gnet v2 echo server of the benchmark suite: one
// event loop per GOMAXPROCS, every read written straight back. It prints
// "listening on ADDR" once gnet has booted.
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

func (s *echoServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, err := c.Next(-1)
	if err != nil {
		return gnet.Close
	}
	if _, err := c.Write(buf); err != nil {
		return gnet.Close
	}
	return gnet.None
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "address to listen on")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops")
	flag.Parse()
	err := gnet.Run(&echoServer{addr: *addr}, "tcp://"+*addr,
		gnet.WithNumEventLoop(*loops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogLevel(logging.ErrorLevel))
	if err != nil {
		log.Fatal(err)
	}
}
