package nat

import "encoding/binary"

// This file is the martian destination check of new outbound flows
// (issue 14 item 1). Only the new-flow paths run it: createOut on the
// destination, createIn on the source (the flow's remote either way). A
// packet of an established flow can't have such a remote, since its flow
// was created after the check.

// Martian reports whether an outbound packet to dst must be dropped
// before translation: 0.0.0.0/8, loopback 127.0.0.0/8, link-local
// 169.254.0.0/16, multicast 224.0.0.0/4, 240.0.0.0/4 (with the limited
// broadcast 255.255.255.255), any address of the inside network (its
// directed broadcast included), and the directed broadcast of the outside
// subnet. None of these may leave natgw with a public source address.
func (p *Policy) Martian(dst uint32) bool {
	switch {
	case dst>>24 == 0, dst>>24 == 127, dst>>16 == 0xa9fe, dst >= 0xe0000000:
		return true
	}
	if base, mask, ok := prefixMask(p.InsidePrefix.Addr().As4(), p.InsidePrefix.Bits()); ok && dst&mask == base {
		return true
	}
	if base, mask, ok := prefixMask(p.OutsidePrefix.Addr().As4(), p.OutsidePrefix.Bits()); ok && bitsHaveBroadcast(p.OutsidePrefix.Bits()) && dst == base|^mask {
		return true
	}
	return false
}

// prefixMask returns a prefix's network address and mask, host byte
// order; ok is false for an invalid prefix.
func prefixMask(a [4]byte, bits int) (base, mask uint32, ok bool) {
	if bits < 0 || bits > 32 {
		return 0, 0, false
	}
	mask = ^uint32(0) << (32 - bits)
	if bits == 0 {
		mask = 0
	}
	return binary.BigEndian.Uint32(a[:]) & mask, mask, true
}

// bitsHaveBroadcast reports whether a prefix of this length has a directed
// broadcast address (not /31 and /32, RFC 3021).
func bitsHaveBroadcast(bits int) bool { return bits < 31 }
