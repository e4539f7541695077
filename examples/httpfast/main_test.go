//go:build linux

package main

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, "httpfast", main) }

// TestCommand runs the program, gets "/" and stops it with SIGTERM, with
// io_uring and where it is refused (on Go's net then).
func TestCommand(t *testing.T) {
	for _, start := range []func(*testing.T, string, io.Writer) (*exampletest.Proc, string){exampletest.Start, exampletest.StartRefused} {
		p, addr := start(t, "-addr 127.0.0.1:0 -loops 1", nil)
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		client.CloseIdleConnections()
		if resp.StatusCode != 200 || string(body) != "Hello, World!" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		exampletest.Stop(t, p)
	}
}
