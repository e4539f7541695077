package main

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kasync-go/kasync/executor"
)

// server answers HTTP/1.1 on the fast path: every request that OnData finds
// complete is answered at once, several per call when they are pipelined; a
// request still arriving is left unconsumed and comes back with the rest.
// Nothing is allocated per request.
type server struct {
	date atomic.Pointer[[]byte] // "Mon, 02 Jan 2006 15:04:05 GMT", refreshed by OnTick
}

const dateFormat = "Mon, 02 Jan 2006 15:04:05 GMT" // http.TimeFormat

func newServer() *server {
	s := &server{}
	s.setDate(time.Now())
	return s
}

func (s *server) setDate(now time.Time) {
	d := now.UTC().AppendFormat(make([]byte, 0, len(dateFormat)), dateFormat)
	s.date.Store(&d)
}

// OnTick refreshes the Date header at each second, on every loop (they
// store the same value).
func (s *server) OnTick(_ int, now time.Time) time.Duration {
	s.setDate(now)
	return time.Second - time.Duration(now.Nanosecond())
}

func (s *server) OnOpen(*executor.HConn) {}

func (s *server) OnClose(*executor.HConn, error) {}

func (s *server) OnData(c *executor.HConn, data []byte) int {
	var headers [maxHeaders]Header
	done := 0
	for done < len(data) {
		req, n, err := Parse(data[done:], headers[:])
		switch err {
		case nil:
		case ErrIncomplete:
			return done
		case ErrUnsupported:
			s.fail(c, "501 Not Implemented")
			return len(data)
		case ErrTooLarge:
			s.fail(c, "431 Request Header Fields Too Large")
			return len(data)
		default:
			s.fail(c, "400 Bad Request")
			return len(data)
		}
		done += n
		s.respond(c, &req)
		if !req.KeepAlive {
			c.Close() // after the responses queued so far
			return len(data)
		}
	}
	return done
}

var (
	hello        = []byte("Hello, World!")
	notFound     = []byte("Not Found")
	notAllowed   = []byte("Method Not Allowed")
	respOK       = []byte("HTTP/1.1 200 OK\r\nServer: kasync\r\nContent-Type: text/plain; charset=utf-8\r\nDate: ")
	respNotFound = []byte("HTTP/1.1 404 Not Found\r\nServer: kasync\r\nContent-Type: text/plain; charset=utf-8\r\nDate: ")
	respNotAllow = []byte("HTTP/1.1 405 Method Not Allowed\r\nServer: kasync\r\nAllow: GET, HEAD\r\nContent-Type: text/plain; charset=utf-8\r\nDate: ")
	closeHeader  = []byte("\r\nConnection: close")
	lengthHeader = []byte("\r\nContent-Length: ")
	endHead      = []byte("\r\n\r\n")
)

// respond queues the response to req.
func (s *server) respond(c *executor.HConn, req *Request) {
	head, body := respOK, hello
	switch {
	case string(req.Target) != "/":
		head, body = respNotFound, notFound
	case string(req.Method) != "GET" && string(req.Method) != "HEAD":
		head, body = respNotAllow, notAllowed
	}
	c.Write(head)
	c.Write(*s.date.Load())
	if !req.KeepAlive {
		c.Write(closeHeader)
	}
	c.Write(lengthHeader)
	var num [20]byte
	c.Write(strconv.AppendInt(num[:0], int64(len(body)), 10))
	c.Write(endHead)
	if string(req.Method) != "HEAD" {
		c.Write(body)
	}
}

// fail answers a request that cannot be served, and closes the connection.
func (s *server) fail(c *executor.HConn, status string) {
	c.Write([]byte("HTTP/1.1 " + status + "\r\nServer: kasync\r\nConnection: close\r\nContent-Length: 0\r\nDate: "))
	c.Write(*s.date.Load())
	c.Write(endHead)
	c.Close()
}
