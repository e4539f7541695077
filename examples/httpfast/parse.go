package main

import "errors"

// A small HTTP/1.1 request parser for the fast path: it reads a request line
// and headers up to the blank line, and the body's length, from bytes as
// they arrived, without allocating or copying. The Request's slices point
// into the input, so they are valid as long as the input is (for OnData:
// during the call).

// Errors of Parse. ErrIncomplete is not a failure: the request is not all
// there yet.
var (
	ErrIncomplete  = errors.New("http: incomplete request")
	ErrMalformed   = errors.New("http: malformed request")
	ErrTooLarge    = errors.New("http: request head too large")
	ErrUnsupported = errors.New("http: unsupported transfer coding") // chunked bodies
)

const (
	maxHead    = 8 << 10 // bytes of request line and headers
	maxHeaders = 64
	maxBody    = 1 << 20
)

// Header is one header field; Name as sent (compare with equalFold).
type Header struct {
	Name, Value []byte
}

// Request is one parsed request.
type Request struct {
	Method, Target []byte
	Minor          int // HTTP/1.Minor
	Headers        []Header
	ContentLength  int
	Body           []byte
	KeepAlive      bool // the connection stays open after the response
}

// Parse parses the request at the start of b and returns it with its length
// (head and body), so that the next request starts at b[n:]. The headers go
// to headers[:0]; with room for maxHeaders there (e.g. an array on the
// caller's stack) Parse allocates nothing. It returns ErrIncomplete if b
// holds only part of a request, and another error if the request cannot be
// served. Lines may end in CRLF or a bare LF.
//
// (A Request is returned rather than filled in through a pointer: a store
// through a pointer parameter would make the compiler move the caller's
// header array to the heap.)
func Parse(b []byte, headers []Header) (req Request, n int, err error) {
	req.Headers = headers[:0]
	// Request line: METHOD SP TARGET SP HTTP/1.x
	line, rest, ok := nextLine(b)
	if !ok {
		return Request{}, 0, incomplete(b)
	}
	// Leading empty lines are skipped (RFC 9112, 2.2), within the head limit.
	for len(line) == 0 {
		if line, rest, ok = nextLine(rest); !ok {
			return Request{}, 0, incomplete(b)
		}
	}
	sp := indexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return Request{}, 0, ErrMalformed
	}
	req.Method = line[:sp]
	line = line[sp+1:]
	sp = indexByte(line, ' ')
	if sp <= 0 {
		return Request{}, 0, ErrMalformed
	}
	req.Target = line[:sp]
	for _, c := range req.Target {
		if c <= ' ' || c == 0x7f {
			return Request{}, 0, ErrMalformed
		}
	}
	proto := line[sp+1:]
	if len(proto) != 8 || string(proto[:7]) != "HTTP/1." || proto[7] < '0' || proto[7] > '9' {
		return Request{}, 0, ErrMalformed
	}
	req.Minor = int(proto[7] - '0')
	req.KeepAlive = req.Minor >= 1

	sawLength := false
	for {
		if line, rest, ok = nextLine(rest); !ok {
			return Request{}, 0, incomplete(b)
		}
		if len(line) == 0 {
			break
		}
		colon := indexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return Request{}, 0, ErrMalformed // also rejects obsolete line folding
		}
		if len(req.Headers) == maxHeaders {
			return Request{}, 0, ErrTooLarge
		}
		h := Header{Name: line[:colon], Value: trimOWS(line[colon+1:])}
		for _, c := range h.Value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return Request{}, 0, ErrMalformed
			}
		}
		req.Headers = append(req.Headers, h)
		switch {
		case equalFold(h.Name, "content-length"):
			v, ok := parseLength(h.Value)
			if !ok || (sawLength && v != req.ContentLength) {
				return Request{}, 0, ErrMalformed
			}
			req.ContentLength, sawLength = v, true
		case equalFold(h.Name, "transfer-encoding"):
			return Request{}, 0, ErrUnsupported
		case equalFold(h.Name, "connection"):
			if hasToken(h.Value, "close") {
				req.KeepAlive = false
			} else if hasToken(h.Value, "keep-alive") {
				req.KeepAlive = true
			}
		}
	}
	head := len(b) - len(rest)
	if req.ContentLength > maxBody {
		return Request{}, 0, ErrTooLarge
	}
	if len(rest) < req.ContentLength {
		return Request{}, 0, ErrIncomplete
	}
	req.Body = rest[:req.ContentLength:req.ContentLength]
	return req, head + req.ContentLength, nil
}

// incomplete tells a head still arriving from one over the limit.
func incomplete(b []byte) error {
	if len(b) >= maxHead {
		return ErrTooLarge
	}
	return ErrIncomplete
}

// nextLine splits off the first line (without its CRLF or LF).
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := indexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	line, rest = b[:i], b[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest, true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with lower, an ASCII lower-case string, ignoring case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token (any case).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		i := indexByte(v, ',')
		item := v
		if i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if equalFold(trimOWS(item), token) {
			return true
		}
	}
	return false
}

// parseLength parses a Content-Length: decimal digits only, no sign.
func parseLength(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
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
