//go:build linux

package ring

import "unsafe"

// probeOp mirrors struct io_uring_probe_op.
type probeOp struct {
	op    uint8
	_     uint8
	flags uint16
	_     uint32
}

// probe mirrors struct io_uring_probe with room for every opcode.
type probe struct {
	lastOp uint8
	opsLen uint8
	_      uint16
	_      [3]uint32
	ops    [256]probeOp
}

// Supports reports whether the kernel implements op (IORING_REGISTER_PROBE,
// asked once and remembered), less opcodes hidden by WithoutOps.
func (r *Ring) Supports(op Op) bool {
	if r.noOps[op] {
		return false
	}
	if r.probed == nil {
		p := new(probe)
		if _, err := r.register("probe", regProbe, unsafe.Pointer(p), uint32(len(p.ops))); err != nil {
			return false
		}
		r.probed = new([256]bool)
		for i := 0; i < int(p.opsLen); i++ {
			r.probed[p.ops[i].op] = p.ops[i].flags&probeOpSupported != 0
		}
	}
	return r.probed[op]
}
