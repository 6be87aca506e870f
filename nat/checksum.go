package nat

// Internet checksum (RFC 1071) with incremental updates (RFC 1624). Runs on
// the worker that owns the packet; nothing here allocates or locks.
//
// A partial sum is a uint32 one's-complement sum that has not been
// complemented yet. Sum returns partial sums already folded to 16 bits, so
// partial sums can be added together (or passed as Sum's initial value)
// many thousand times before a uint32 could overflow; Fold turns a partial
// sum into the value of a checksum field.

import (
	"encoding/binary"
	"math/bits"
)

// Sum returns the one's-complement sum of b, taken as big-endian 16-bit
// words (an odd final byte is padded with a zero byte), added to initial.
// The result is folded to 16 bits. To sum a packet in pieces, pass one
// piece's result as the next piece's initial; every piece but the last must
// have an even length.
func Sum(b []byte, initial uint32) uint32 {
	// Add 64-bit big-endian words with end-around carry: the sum modulo
	// 2^64-1 folds to the same 16-bit sum because 2^16-1 divides 2^64-1.
	acc := uint64(initial)
	var carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	if len(b) >= 16 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), carry)
		b = b[16:]
	}
	if len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b[0:4])), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b[0:2])), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0])<<8, carry)
	}
	// acc+carry cannot lose a carry twice: after a carry out acc is 0.
	acc, carry = bits.Add64(acc, 0, carry)
	acc += carry
	return fold64(acc)
}

// fold64 folds a 64-bit one's-complement sum to 16 bits (in a uint32),
// keeping a non-zero sum non-zero.
func fold64(acc uint64) uint32 {
	s := (acc >> 32) + (acc & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint32(s)
}

// Fold folds partial sum to 16 bits and complements it, giving the value
// of a checksum field. Verifying data that includes its checksum field
// gives 0 when the checksum is correct.
func Fold(sum uint32) uint16 {
	s := (sum >> 16) + (sum & 0xffff)
	s += s >> 16
	return ^uint16(s)
}

// PseudoHeaderSum returns the partial sum of the IPv4 pseudo header of a
// TCP or UDP checksum: source and destination address (host byte order),
// protocol and transport length (header plus data, in bytes).
func PseudoHeaderSum(src, dst uint32, proto uint8, length uint16) uint32 {
	return src>>16 + src&0xffff + dst>>16 + dst&0xffff + uint32(proto) + uint32(length)
}

// UpdateChecksum16 returns checksum field cksum updated for a 16-bit word
// of the covered data changing from old to new, per RFC 1624 eqn. 3:
// HC' = ~(~HC + ~m + m'). It gives exactly the checksum a computation from
// scratch would give, except that for data that becomes all zeros it gives
// 0x0000 where a computation from scratch gives 0xFFFF. The caller handles
// the UDP rules: a zero UDP checksum (none) is left alone, not updated, and
// an updated UDP checksum of 0 is sent as 0xFFFF.
func UpdateChecksum16(cksum, old, new uint16) uint16 {
	s := uint32(^cksum) + uint32(^old) + uint32(new)
	s = (s >> 16) + (s & 0xffff)
	s += s >> 16
	return ^uint16(s)
}

// fold16 folds a sum of 16-bit words into a 16-bit one's complement sum.
func fold16(s uint32) uint16 {
	s = (s >> 16) + (s & 0xffff)
	s += s >> 16
	return uint16(s)
}

// applyDeltas updates checksum cksum by the precomputed one's complement
// sums d1 and d2 of field changes (each the sum of ~old + new over the
// changed 16-bit words, RFC 1624 eqn. 3).
func applyDeltas(cksum, d1, d2 uint16) uint16 {
	return ^fold16(uint32(^cksum) + uint32(d1) + uint32(d2))
}

// ttlDecrement is the delta of a TTL decrement: the word TTL<<8|proto
// becomes (TTL-1)<<8|proto, and ~w + (w - 0x100) = 0xFFFF - 0x100.
const ttlDecrement = 0xFEFF

// translationDeltas returns the checksum deltas of f's outbound
// translation (see Flow.dAddr): Priv to Pub, and Priv:PrivPort to
// Pub:PubPort.
func translationDeltas(f *Flow) (addr, l4 uint16) {
	addr = fold16((^f.Priv)>>16 + (^f.Priv)&0xffff + f.Pub>>16 + f.Pub&0xffff)
	l4 = fold16(uint32(addr) + uint32(^f.PrivPort) + uint32(f.PubPort))
	return addr, l4
}

// UpdateChecksum32 is UpdateChecksum16 for a 32-bit field (an IPv4
// address, or a port pair) changing from old to new; the field must start
// at an even offset of the covered data.
func UpdateChecksum32(cksum uint16, old, new uint32) uint16 {
	s := uint32(^cksum) + (^old)>>16 + (^old)&0xffff + new>>16 + new&0xffff
	s = (s >> 16) + (s & 0xffff)
	s += s >> 16
	return ^uint16(s)
}

// transportChecksumOffset returns the offset of the checksum field in the
// transport header of ip and the part of ip's payload the checksum covers,
// or ok false when ip is a fragment, is not TCP, UDP or ICMP, or its
// payload is too short to hold its transport header.
func transportChecksumOffset(ip IPv4) (seg []byte, off int, ok bool) {
	if ip.IsFragment() {
		return nil, 0, false
	}
	p := ip.Payload()
	switch ip.Protocol() {
	case ProtoTCP:
		if len(p) < TCPMinLen {
			return nil, 0, false
		}
		return p, tcpChecksumOff, true
	case ProtoUDP:
		u, ok := ParseUDP(p)
		if !ok {
			return nil, 0, false
		}
		return u, udpChecksumOff, true
	case ProtoICMP:
		if len(p) < ICMPHeaderLen {
			return nil, 0, false
		}
		return p, icmpChecksumOff, true
	}
	return nil, 0, false
}

// transportChecksum computes the transport checksum of ip from scratch,
// as if its checksum field were zero.
func transportChecksum(ip IPv4) (sum uint16, off int, ok bool) {
	seg, off, ok := transportChecksumOffset(ip)
	if !ok {
		return 0, 0, false
	}
	var initial uint32
	if proto := ip.Protocol(); proto != ProtoICMP {
		initial = PseudoHeaderSum(ip.Src(), ip.Dst(), proto, uint16(len(seg)))
	}
	// off is even, so both pieces keep their 16-bit word alignment.
	return Fold(Sum(seg[off+2:], Sum(seg[:off], initial))), off, true
}

// TransportChecksum returns the TCP, UDP or ICMP checksum of packet ip
// computed from scratch, with the IPv4 pseudo header for TCP and UDP and
// over the UDP length for UDP. The checksum field itself is left out of
// the sum. A UDP result of 0 is returned as 0, not 0xFFFF. It returns 0
// when ip is a fragment (the checksum covers the whole datagram), is not
// TCP, UDP or ICMP, or is too short to hold its transport header; use
// CompleteChecksum to tell these cases apart.
func TransportChecksum(ip IPv4) uint16 {
	c, _, _ := transportChecksum(ip)
	return c
}

// CompleteChecksum computes the transport checksum of packet ip from
// scratch and stores it, as for a frame received with a partial checksum
// from a NIC with checksum offload. A UDP checksum that computes to 0 is
// stored as 0xFFFF. It reports false, changing nothing, in the cases where
// TransportChecksum returns 0 for lack of a checksum to compute.
func CompleteChecksum(ip IPv4) bool {
	c, off, ok := transportChecksum(ip)
	if !ok {
		return false
	}
	if c == 0 && ip.Protocol() == ProtoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(ip.Payload()[off:], c)
	return true
}
