package nat

// The naive Internet checksum, straight from RFC 1071: add big-endian
// 16-bit words one byte pair at a time, fold the carries, complement. It is
// the oracle the fast Sum and the incremental updates are tested against.

// naiveSum returns the one's-complement sum of b (an odd final byte padded
// with zero) added to initial, folded to 16 bits.
func naiveSum(b []byte, initial uint32) uint32 {
	sum := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint32(sum)
}

// naiveChecksum returns the Internet checksum of b: the complement of its
// folded one's-complement sum.
func naiveChecksum(b []byte, initial uint32) uint16 {
	return ^uint16(naiveSum(b, initial))
}

// naiveChecksumWithout returns the checksum of b computed as if the 16-bit
// field at off were zero.
func naiveChecksumWithout(b []byte, off int, initial uint32) uint16 {
	c := make([]byte, len(b))
	copy(c, b)
	c[off], c[off+1] = 0, 0
	return naiveChecksum(c, initial)
}

// naivePseudoHeader returns the 12-byte IPv4 pseudo header of a TCP or
// UDP checksum, for the oracle to sum byte by byte.
func naivePseudoHeader(src, dst uint32, proto uint8, length uint16) []byte {
	return []byte{
		byte(src >> 24), byte(src >> 16), byte(src >> 8), byte(src),
		byte(dst >> 24), byte(dst >> 16), byte(dst >> 8), byte(dst),
		0, proto, byte(length >> 8), byte(length),
	}
}
