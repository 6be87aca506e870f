package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// FuzzSum checks the fast Sum against the RFC 1071 oracle, whole and in
// two pieces cut at an even offset.
func FuzzSum(f *testing.F) {
	f.Add([]byte{}, uint32(0), uint16(0))
	f.Add([]byte{0xff}, uint32(0xffffffff), uint16(1))
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint32(0), uint16(4))
	f.Add(writePayload(1501), uint32(0x1234), uint16(700))
	f.Fuzz(func(t *testing.T, data []byte, initial uint32, cut uint16) {
		want := naiveSum(data, initial)
		assert.Equal(t, want, Sum(data, initial))
		c := int(cut) &^ 1
		if c <= len(data) {
			assert.Equal(t, want, Sum(data[c:], Sum(data[:c], initial)), "cut at %d", c)
		}
	})
}

// FuzzChecksumIncremental checks that an RFC 1624 incremental update of a
// 16- or 32-bit field equals the checksum recomputed from scratch.
func FuzzChecksumIncremental(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0xed, 0xcb}, uint16(0), uint32(0x1235), false)
	f.Add([]byte{0x12, 0x34, 0xed, 0xca}, uint16(0), uint32(0x1235), false)
	f.Add([]byte{0xff, 0xff}, uint16(0), uint32(0), false)
	f.Add([]byte{0, 0, 0, 0}, uint16(2), uint32(1), false)
	f.Add([]byte{0, 0, 0, 0, 0xff, 0xff}, uint16(0), uint32(0xffffffff), true)
	f.Add(hdrSeedPacket(), uint16(ipv4SrcOff), uint32(0xc6130a0a), true)
	f.Fuzz(func(t *testing.T, data []byte, off uint16, new uint32, wide bool) {
		if len(data) == 0 {
			return
		}
		checkIncremental(t, data, int(off)%len(data), wide, new)
	})
}
