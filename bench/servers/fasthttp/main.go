// Command fasthttp is the fasthttp server of the benchmark suite: "/" answers
// "Hello, World!" as text/plain. It prints "listening on ADDR" once it
// accepts connections.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr())
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.WriteString("Hello, World!")
	}
	log.Fatal(fasthttp.Serve(ln, handler))
}
