package loadgen

import (
	"bytes"
	"errors"
	"fmt"
)

// HelloBody is the body every HTTP server of the suite answers GET / with.
const HelloBody = "Hello, World!"

// httpRequest is the keep-alive request every connection sends, round after round.
const httpRequest = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: kasync-bench\r\n\r\n"

// httpBufSize bounds a response, headers included.
const httpBufSize = 4096

// HTTP runs keep-alive HTTP/1.1 load against cfg.Addr: every connection
// sends GET / and reads the whole response before the next. A response other
// than status 200 with body HelloBody (Content-Length or chunked) fails the
// run. cfg.Size is not used.
func HTTP(cfg Config) (Result, error) {
	cfg.setDefaults()
	return run(cfg, httpProto{})
}

type httpProto struct{}

func (httpProto) sizes() (int, int) { return len(httpRequest), httpBufSize }

func (httpProto) init(c *conn) {
	c.out = c.outMem[:copy(c.outMem, httpRequest)]
}

func (httpProto) begin(*conn) {}

func (httpProto) window(c *conn) []byte { return c.buf[c.got:] }

func (httpProto) received(c *conn, data []byte) (bool, error) {
	if copy(c.buf[c.got:], data) < len(data) {
		return false, fmt.Errorf("http: response longer than %d bytes", len(c.buf))
	}
	c.got += len(data)
	n, err := parseResponse(c.buf[:c.got], HelloBody)
	if err != nil || n == 0 {
		return false, err
	}
	if n != c.got {
		return false, fmt.Errorf("http: %d bytes after the response to a request not yet sent", c.got-n)
	}
	return true, nil
}

func (httpProto) message(_ *conn, _ uint64, dst []byte) int { return copy(dst, httpRequest) }

func (httpProto) openWindow(c *conn) []byte { return c.buf[c.got:] }

// consume appends data to the partial response in c.buf and takes every
// whole response off the front.
func (httpProto) consume(c *conn, data []byte) (int, error) {
	if copy(c.buf[c.got:], data) < len(data) {
		return 0, fmt.Errorf("http: response longer than %d bytes", len(c.buf)/2)
	}
	c.got += len(data)
	n, off := 0, 0
	for off < c.got {
		m, err := parseResponse(c.buf[off:c.got], HelloBody)
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		off += m
		n++
	}
	if off > 0 {
		c.got = copy(c.buf, c.buf[off:c.got])
	}
	if c.got > len(c.buf)/2 {
		return n, fmt.Errorf("http: response longer than %d bytes", len(c.buf)/2)
	}
	return n, nil
}

var (
	crlf       = []byte("\r\n")
	headersEnd = []byte("\r\n\r\n")
)

// parseResponse parses an HTTP/1.x response in b and checks it: status 200
// and a body equal to want. It returns the length of the response, or 0 if b
// holds only part of it so far. It allocates only to report an error.
func parseResponse(b []byte, want string) (int, error) {
	end := bytes.Index(b, headersEnd)
	if end < 0 {
		return 0, nil
	}
	head := b[:end+2] // every header line, each ending in CRLF
	line, head := cutLine(head)
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, fmt.Errorf("http: bad status line %q", line)
	}
	if string(line[9:12]) != "200" {
		return 0, fmt.Errorf("http: status %q, want 200", line[9:])
	}
	length, chunked := -1, false
	for len(head) > 0 {
		line, head = cutLine(head)
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, fmt.Errorf("http: bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := atoi(value)
			if !ok {
				return 0, fmt.Errorf("http: bad Content-Length %q", value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	body := b[end+4:]
	switch {
	case chunked:
		n, err := checkChunked(body, want)
		if n == 0 || err != nil {
			return 0, err
		}
		return end + 4 + n, nil
	case length >= 0:
		if len(body) < length {
			return 0, nil
		}
		if string(body[:length]) != want {
			return 0, fmt.Errorf("http: body %q, want %q", body[:length], want)
		}
		return end + 4 + length, nil
	default:
		return 0, errors.New("http: response has neither Content-Length nor chunked encoding")
	}
}

// checkChunked checks a chunked body against want; it returns the body's
// encoded length, or 0 if incomplete. Trailers are not expected.
func checkChunked(b []byte, want string) (int, error) {
	pos, off := 0, 0
	for {
		i := bytes.Index(b[pos:], crlf)
		if i < 0 {
			return 0, nil
		}
		sizeField, _, _ := bytes.Cut(b[pos:pos+i], []byte(";"))
		size, ok := xtoi(bytes.TrimSpace(sizeField))
		if !ok {
			return 0, fmt.Errorf("http: bad chunk size %q", b[pos:pos+i])
		}
		pos += i + 2
		if len(b) < pos+size+2 {
			return 0, nil
		}
		if size == 0 {
			if off != len(want) {
				return 0, fmt.Errorf("http: body is %d bytes, want %q", off, want)
			}
			if string(b[pos:pos+2]) != "\r\n" {
				return 0, errors.New("http: trailers after a chunked body are not expected")
			}
			return pos + 2, nil
		}
		if off+size > len(want) || string(b[pos:pos+size]) != want[off:off+size] {
			return 0, fmt.Errorf("http: chunk %q does not match the body %q", b[pos:pos+size], want)
		}
		off += size
		pos += size
		if string(b[pos:pos+2]) != "\r\n" {
			return 0, errors.New("http: chunk not followed by CRLF")
		}
		pos += 2
	}
}

func cutLine(b []byte) (line, rest []byte) {
	i := bytes.Index(b, crlf)
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i+2:]
}

func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func xtoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 7 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}
