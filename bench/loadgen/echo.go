package loadgen

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Echo runs echo ping-pong against cfg.Addr: every connection sends
// cfg.Size bytes, receives exactly as many back and checks each one. A
// server that returns anything else fails the run with an error that says
// where the first wrong byte was.
func Echo(cfg Config) (Result, error) {
	cfg.setDefaults()
	return run(cfg, &echoProto{size: cfg.Size})
}

type echoProto struct {
	size int

	// The open loop's expected response: the request of round
	// wantRound of connection wantConn (wantRound 0: none yet).
	want      []byte
	wantConn  int
	wantRound uint64
}

func (p echoProto) sizes() (int, int) { return p.size, p.size }

func (p echoProto) init(*conn) {}

func (p echoProto) begin(c *conn) {
	c.out = c.outMem[:p.size]
	fillPattern(c.out, uint64(c.id), c.round)
}

func (p echoProto) window(c *conn) []byte { return c.buf[c.got:p.size] }

func (p echoProto) received(c *conn, data []byte) (bool, error) {
	want := c.out[c.got:]
	if len(data) > len(want) {
		return false, fmt.Errorf("echo: %d bytes back where %d were sent", c.got+len(data), len(c.out))
	}
	if !bytes.Equal(data, want[:len(data)]) {
		for i := range data {
			if data[i] != want[i] {
				return false, fmt.Errorf("echo mismatch at byte %d of %d: sent %#02x, got %#02x", c.got+i, p.size, want[i], data[i])
			}
		}
	}
	c.got += len(data)
	return c.got == len(c.out), nil
}

func (p *echoProto) message(c *conn, round uint64, dst []byte) int {
	fillPattern(dst[:p.size], uint64(c.id), round)
	return p.size
}

func (p *echoProto) openWindow(c *conn) []byte { return c.buf[:p.size] }

// consume checks data against the requests of the rounds after c.recvd,
// c.got bytes of the first of them already received.
func (p *echoProto) consume(c *conn, data []byte) (int, error) {
	n := 0
	for len(data) > 0 {
		round := c.recvd + uint64(n) + 1
		if p.wantRound != round || p.wantConn != c.id {
			if p.want == nil {
				p.want = make([]byte, p.size)
			}
			fillPattern(p.want, uint64(c.id), round)
			p.wantConn, p.wantRound = c.id, round
		}
		k := min(len(data), p.size-c.got)
		want := p.want[c.got : c.got+k]
		if !bytes.Equal(data[:k], want) {
			for i := range k {
				if data[i] != want[i] {
					return n, fmt.Errorf("round %d: echo mismatch at byte %d of %d: sent %#02x, got %#02x", round, c.got+i, p.size, want[i], data[i])
				}
			}
		}
		c.got += k
		data = data[k:]
		if c.got == p.size {
			c.got = 0
			n++
		}
	}
	return n, nil
}

// fillPattern fills b with bytes that depend on the connection and the round:
// 8-byte words of an arithmetic sequence whose start is a hash of both. Two
// messages of different connections or rounds differ in every word, so a
// corrupted, repeated or misrouted echo does not match.
func fillPattern(b []byte, connID, round uint64) {
	w := mix(connID<<40 ^ round)
	const step = 0x9e3779b97f4a7c15
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], w)
		w += step
	}
	for ; i < len(b); i++ {
		b[i] = byte(w)
		w >>= 8
	}
}

// mix is splitmix64's finalizer: a cheap hash that spreads every input bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
