// Command gnethttp is the gnet v2 HTTP/1.1 server of the benchmark suite:
// every request (keep-alive, pipelined; GET without a body, as the suite and
// wrk send) is answered "Hello, World!" as text/plain, the answers to one
// read written together. It prints "listening on ADDR" once gnet has booted.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

type httpServer struct {
	gnet.BuiltinEventEngine
	addr string
}

// date is the Date header's value, renewed every second.
var date atomic.Pointer[string]

func renewDate() {
	for {
		d := time.Now().UTC().Format(time.RFC1123)
		d = d[:len(d)-3] + "GMT"
		date.Store(&d)
		time.Sleep(time.Second)
	}
}

func (s *httpServer) OnBoot(gnet.Engine) gnet.Action {
	fmt.Fprintf(os.Stdout, "listening on %s\n", s.addr)
	return gnet.None
}

func (s *httpServer) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(new([]byte))
	return nil, gnet.None
}

var headersEnd = []byte("\r\n\r\n")

func (s *httpServer) OnTraffic(c gnet.Conn) gnet.Action {
	in, err := c.Peek(-1)
	if err != nil {
		return gnet.Close
	}
	out := c.Context().(*[]byte)
	consumed := 0
	for {
		end := bytes.Index(in[consumed:], headersEnd)
		if end < 0 {
			break
		}
		consumed += end + len(headersEnd)
		*out = append(*out, "HTTP/1.1 200 OK\r\nServer: gnet\r\nContent-Type: text/plain\r\nDate: "...)
		*out = append(*out, *date.Load()...)
		*out = append(*out, "\r\nContent-Length: 13\r\n\r\nHello, World!"...)
	}
	if consumed == 0 && len(in) > 8192 {
		return gnet.Close // headers too large
	}
	c.Discard(consumed)
	if len(*out) > 0 {
		_, err = c.Write(*out)
		*out = (*out)[:0]
		if err != nil {
			return gnet.Close
		}
	}
	return gnet.None
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops")
	flag.Parse()
	d := ""
	date.Store(&d)
	go renewDate()
	err := gnet.Run(&httpServer{addr: *addr}, "tcp://"+*addr,
		gnet.WithNumEventLoop(*loops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogLevel(logging.ErrorLevel))
	if err != nil {
		log.Fatal(err)
	}
}
