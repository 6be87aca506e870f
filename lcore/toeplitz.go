package lcore

import "encoding/binary"

// RSSKeyLen is the length of the Toeplitz key natgw programs into NICs.
const RSSKeyLen = 40

// RETASize is the size of the redirection table.
const RETASize = 128

// DefaultRSSKey is natgw's Toeplitz key. It is the key of Microsoft's RSS
// verification suite, widely used as a default; any key works as long as
// the NIC and the software owner function use the same one.
var DefaultRSSKey = [RSSKeyLen]byte{
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2,
	0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
	0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
}

// Owner maps a remote endpoint to the worker that owns its flows (SPEC
// §3): the Toeplitz hash of the remote IPv4 address and port (6 input
// bytes, address first, both big endian, as a NIC hashes
// L3_DST_ONLY|L4_DST_ONLY or L3_SRC_ONLY|L4_SRC_ONLY), indexed into a
// redirection table. It is immutable and safe for concurrent use.
type Owner struct {
	// tables[i][b] is the hash contribution of byte value b at input byte i.
	tables [6][256]uint32
	reta   [RETASize]uint8
}

// NewOwner builds the owner function of key for workers workers, with the
// redirection table filled round robin (as DPDK's default).
func NewOwner(key [RSSKeyLen]byte, workers int) *Owner {
	o := &Owner{}
	for i := range o.tables {
		for b := 0; b < 256; b++ {
			var in [6]byte
			in[i] = byte(b)
			o.tables[i][b] = Toeplitz(key[:], in[:])
		}
	}
	for i := range o.reta {
		o.reta[i] = uint8(i % workers)
	}
	return o
}

// Toeplitz computes the Toeplitz hash of input under key (len(key) must be
// at least len(input)+4): the reference bit-by-bit form, used to build
// tables and as the test oracle.
func Toeplitz(key, input []byte) uint32 {
	var hash uint32
	window := binary.BigEndian.Uint32(key)
	for i, b := range input {
		for bit := 7; bit >= 0; bit-- {
			if b&(1<<bit) != 0 {
				hash ^= window
			}
			window <<= 1
			if next := i + 4; next < len(key) && key[next]&(1<<bit) != 0 {
				window |= 1
			}
		}
	}
	return hash
}

// Hash returns the Toeplitz hash of a remote endpoint.
func (o *Owner) Hash(addr uint32, port uint16) uint32 {
	return o.tables[0][addr>>24] ^ o.tables[1][addr>>16&0xFF] ^ o.tables[2][addr>>8&0xFF] ^
		o.tables[3][addr&0xFF] ^ o.tables[4][port>>8] ^ o.tables[5][port&0xFF]
}

// Of returns the worker owning a remote endpoint.
func (o *Owner) Of(addr uint32, port uint16) int {
	return int(o.reta[o.Hash(addr, port)%RETASize])
}

// RETA returns the redirection table, to program into a NIC.
func (o *Owner) RETA() [RETASize]uint8 { return o.reta }

// BitHashes returns, for each of the 48 input bits (bit 0 is the most
// significant bit of the address's first byte, bit 47 the least
// significant bit of the port), the hash of an input with only that bit
// set: the Toeplitz hash of an endpoint is the XOR of the constants of its
// set bits. Programs that compute the owner elsewhere (the AF_PACKET
// fanout program) are built from them.
func (o *Owner) BitHashes() [48]uint32 {
	var h [48]uint32
	for i := range h {
		h[i] = o.tables[i/8][1<<(7-i%8)]
	}
	return h
}
