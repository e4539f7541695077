package main

import (
	"bytes"
	"errors"
	"testing"
)

var parseSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"HEAD /a?b=c HTTP/1.1\nHost: x\n\n",
	"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
	"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
	"GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
	"GET  / HTTP/1.1\r\n\r\n",
	"GET / HTTP/2.0\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
	"G\xffT / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in        string
		n         int
		err       error
		method    string
		target    string
		keepAlive bool
		body      string
	}{
		{in: parseSeeds[0], n: len(parseSeeds[0]), method: "GET", target: "/", keepAlive: true},
		{in: parseSeeds[1], n: len(parseSeeds[1]), method: "GET", target: "/"},
		{in: parseSeeds[2], n: len(parseSeeds[2]), method: "GET", target: "/", keepAlive: true},
		{in: parseSeeds[3], n: len(parseSeeds[3]), method: "HEAD", target: "/a?b=c", keepAlive: true},
		{in: parseSeeds[4], n: len(parseSeeds[4]), method: "POST", target: "/p", keepAlive: true, body: "hello"},
		{in: parseSeeds[5], err: ErrIncomplete},
		{in: parseSeeds[6], n: len(parseSeeds[6]), method: "GET", target: "/"},
		{in: parseSeeds[7], n: len(parseSeeds[7]) / 2, method: "GET", target: "/", keepAlive: true},
		{in: parseSeeds[8], n: len(parseSeeds[8]), method: "GET", target: "/", keepAlive: true},
		{in: parseSeeds[9], err: ErrUnsupported},
		{in: parseSeeds[10], err: ErrMalformed},
		{in: parseSeeds[11], err: ErrMalformed},
		{in: parseSeeds[12], err: ErrMalformed},
		{in: parseSeeds[13], err: ErrMalformed},
		{in: parseSeeds[14], err: ErrMalformed},
		{in: parseSeeds[15], err: ErrMalformed},
		{in: parseSeeds[16], err: ErrMalformed},
		{in: "GET / HTTP/1.1\r\nHost: x\r\n", err: ErrIncomplete},
		{in: "GET / HTTP/1.1\r\nX: " + string(bytes.Repeat([]byte("x"), maxHead)), err: ErrTooLarge},
	} {
		r, n, err := Parse([]byte(tc.in), nil)
		if err != tc.err || n != tc.n {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", tc.in, n, err, tc.n, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if string(r.Method) != tc.method || string(r.Target) != tc.target || r.KeepAlive != tc.keepAlive || string(r.Body) != tc.body {
			t.Errorf("Parse(%q): method %q target %q keep-alive %v body %q", tc.in, r.Method, r.Target, r.KeepAlive, r.Body)
		}
	}
}

// Any split of a request gives ErrIncomplete until the last byte is there.
func TestParseSplit(t *testing.T) {
	req := []byte(parseSeeds[4])
	for i := range len(req) {
		if _, n, err := Parse(req[:i], nil); err != ErrIncomplete {
			t.Fatalf("Parse of %d of %d bytes = %d, %v", i, len(req), n, err)
		}
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	req := []byte("GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n")
	var headers [maxHeaders]Header
	if a := testing.AllocsPerRun(1000, func() { Parse(req, headers[:]) }); a != 0 {
		t.Fatalf("%v allocations per Parse", a)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := Parse(b, nil)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with n %d", err, n)
			}
			if !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unknown error %v", err)
			}
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("n %d of %d bytes", n, len(b))
		}
		if len(r.Body) != r.ContentLength || !bytes.Equal(b[n-len(r.Body):n], r.Body) {
			t.Fatalf("body %q, content length %d", r.Body, r.ContentLength)
		}
		if !isToken(r.Method) || len(r.Target) == 0 {
			t.Fatalf("method %q target %q", r.Method, r.Target)
		}
		// The request alone parses the same; a prefix of it does not parse.
		if r2, n2, err := Parse(b[:n], nil); n2 != n || err != nil || !bytes.Equal(r2.Target, r.Target) {
			t.Fatalf("request alone: %d, %v", n2, err)
		}
		if _, n2, err := Parse(b[:n-1], nil); err == nil {
			t.Fatalf("a prefix of %d bytes parsed as %d", n-1, n2)
		}
	})
}
