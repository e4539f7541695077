package loadgen

import (
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Bulk streams to an echo server (through a proxy, in the suite) on every
// connection as fast as it takes the bytes, cfg.Size bytes per send, while
// reading the echo back; Result.Bytes is what came back in the window. A
// connection's sends run at most BulkAhead bytes ahead of its echo: the
// loopback's socket buffers grow to many megabytes, and unbounded they
// would fill for seconds before the first byte came back. Each
// connection's stream is a counter pattern (streamWord), and every byte
// that comes back is checked against it at its offset in the stream, so a
// proxy that drops, repeats, reorders, corrupts or crosses bytes fails the
// run instead of scoring. Closed loop only: there is no open loop for it.
func Bulk(cfg Config) (Result, error) {
	if cfg.Size <= 0 {
		cfg.Size = 64 << 10
	}
	cfg.setDefaults()
	chunk := max(cfg.Size&^7, 8) // sends start at whole words of the pattern
	return run(cfg, &bulkLoad{chunk: chunk, sent: make([]uint64, cfg.Conns), got: make([]uint64, cfg.Conns),
		held: make([]bool, cfg.Conns)})
}

// BulkAhead bounds the bytes of a connection sent and not yet echoed back:
// enough to keep a proxy and the echo behind it busy, little enough that
// the stream flows within a few milliseconds of its start.
const BulkAhead = 1 << 20

// bulkLoad is the bulk stream's state. Each connection has one send in
// flight, of c.out (the chunk at stream offset sent[c.id], c.sent bytes of
// it gone), and one receive.
type bulkLoad struct {
	chunk int
	sent  []uint64 // each connection's bytes sent in whole chunks
	got   []uint64 // each connection's bytes echoed back and checked
	held  []bool   // the connection's next chunk waits for the echo (BulkAhead)
	bytes uint64   // echoed back in the window
	heard bool     // bytes came back since the last turn
}

func (b *bulkLoad) sizes() (int, int)     { return b.chunk, b.chunk }
func (b *bulkLoad) init(*conn)            {}
func (b *bulkLoad) window(c *conn) []byte { return c.buf }
func (b *bulkLoad) socketType() int       { return unix.SOCK_STREAM }

func (b *bulkLoad) start(d *driver, c *conn) {
	c.out = c.outMem[:b.chunk]
	fillStream(c.out, streamSeed(c.id), 0)
	d.send(c)
	d.recv(c)
}

func (b *bulkLoad) complete(d *driver, c *conn, op uint8, final bool, res int32, data []byte, _ time.Duration) {
	if op == opSend {
		c.sent += int(res)
		if c.sent == len(c.out) {
			b.sent[c.id] += uint64(len(c.out))
			fillStream(c.out, streamSeed(c.id), b.sent[c.id])
			c.sent = 0
			if b.sent[c.id]+uint64(len(c.out))-b.got[c.id] > BulkAhead {
				b.held[c.id] = true
				return
			}
		}
		d.send(c)
		return
	}
	off := b.got[c.id]
	if res == 0 {
		d.fail(fmt.Errorf("bulk: conn %d: the server closed the connection after echoing %d bytes", c.id, off))
		return
	}
	if data == nil {
		data = c.buf[:res]
	}
	// The chunk in flight may be sent in part already: its bytes count.
	if limit := b.sent[c.id] + uint64(len(c.out)); off+uint64(len(data)) > limit {
		d.fail(fmt.Errorf("bulk: conn %d: %d bytes echoed where at most %d were sent", c.id, off+uint64(len(data)), limit))
		return
	}
	if i := checkStream(data, streamSeed(c.id), off); i >= 0 {
		at := off + uint64(i)
		d.fail(fmt.Errorf("bulk: conn %d: byte %d of the stream came back as %#02x, sent %#02x", c.id, at, data[i], streamByte(streamSeed(c.id), at)))
		return
	}
	b.got[c.id] += uint64(len(data))
	if d.measuring {
		b.bytes += uint64(len(data))
	}
	b.heard = true
	if b.held[c.id] && b.sent[c.id]+uint64(len(c.out))-b.got[c.id] <= BulkAhead {
		b.held[c.id] = false
		d.send(c)
	}
	if final {
		d.recv(c)
	}
}

func (b *bulkLoad) turn(*driver, time.Duration) bool {
	heard := b.heard
	b.heard = false
	return heard
}

func (b *bulkLoad) onWindow(_ *driver, res *Result) {
	if res == nil {
		b.bytes = 0
		return
	}
	res.Bytes = b.bytes
}

// The stream pattern: 8-byte little-endian words, word k of connection id's
// stream streamSeed(id) + k*streamStep. No two words of one stream are equal
// (the step is odd, so k*step repeats only after 2^64 words), so a byte
// lost, repeated or moved anywhere shifts what follows off the pattern, and
// the streams of two connections differ from the first word on.
const streamStep = 0x9e3779b97f4a7c15

func streamSeed(id int) uint64 { return mix(uint64(id)<<32 | 0xb01c) }

// streamByte returns the byte at offset off of the stream with seed.
func streamByte(seed, off uint64) byte {
	return byte((seed + off/8*streamStep) >> (8 * (off % 8)))
}

// fillStream writes the stream with seed from offset off (a multiple of 8)
// into b.
func fillStream(b []byte, seed, off uint64) {
	w := seed + off/8*streamStep
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], w)
		w += streamStep
	}
	for ; i < len(b); i++ {
		b[i] = streamByte(seed, off+uint64(i))
	}
}

// checkStream compares data with the stream with seed from offset off and
// returns the index of the first byte that differs, or -1.
func checkStream(data []byte, seed, off uint64) int {
	i := 0
	for ; i < len(data) && (off+uint64(i))%8 != 0; i++ {
		if data[i] != streamByte(seed, off+uint64(i)) {
			return i
		}
	}
	w := seed + (off+uint64(i))/8*streamStep
	for ; i+8 <= len(data); i += 8 {
		if binary.LittleEndian.Uint64(data[i:]) != w {
			break // the byte loop below finds which
		}
		w += streamStep
	}
	for ; i < len(data); i++ {
		if data[i] != streamByte(seed, off+uint64(i)) {
			return i
		}
	}
	return -1
}
