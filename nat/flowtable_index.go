package nat

// The flow table's two indexes: open addressing with linear probing and
// backward-shift deletion (no tombstones). A slot is {tag, flow}: tag is the
// upper half of the key's 64-bit hash with the low bit forced to 1 (0 marks
// an empty slot), flow the record index.
//
// A key's home slot is the top bits of its tag (tag >> shift). So the home
// of any occupied slot is known from the slot alone, and deletion shifts
// entries back without loading their records; the price is that two keys
// with the same home differ in only 31-log2(size) tag bits, which is still
// well under one false tag match per hundred lookups. Owned by the worker
// that owns the table; nothing here allocates.

import "math/bits"

// indexSlot is one slot of an index.
type indexSlot struct {
	tag  uint32 // upper half of the key hash | 1; 0 = empty
	flow uint32 // record index
}

// flowIndex is one open-addressing index.
type flowIndex struct {
	slots        []indexSlot // power-of-two length, at most half full
	shift        uint32      // 32 - log2(len(slots)): tag >> shift is the home
	seed0, seed1 uint64
}

// Multipliers of the key hash (odd 64-bit constants with well spread bits).
const (
	hashMul0 = 0x9e3779b97f4a7c15
	hashMul1 = 0xc2b2ae3d27d4eb4f
	hashMul2 = 0xff51afd7ed558ccd
)

// newFlowIndex returns an empty index sized for capacity keys: the smallest
// power of two at least 4/3 of capacity (at least 16), so it is at most
// three quarters full (half full or less at most capacities just under a
// power of two). At 10 M flows a half-full bound would cost 54 bytes per
// flow for the two indexes; this costs 27, and linear probes stay short.
func newFlowIndex(capacity int, seed0, seed1 uint64) flowIndex {
	size := max(16, (capacity*4+2)/3)
	log := bits.Len(uint(size - 1)) // ceil(log2(size))
	return flowIndex{
		slots: make([]indexSlot, 1<<log),
		shift: uint32(32 - log),
		seed0: seed0,
		seed1: seed1,
	}
}

// tag hashes a 5-tuple (address a, remote address b, ports pa and pb,
// protocol) packed in two 64-bit words with the index's seeds: two
// independent multiplies, a fold and a final multiply, whose upper half is
// the tag.
func (x *flowIndex) tag(a, b uint32, pa, pb uint16, proto uint8) uint32 {
	w0 := uint64(a)<<32 | uint64(b)
	w1 := uint64(pa)<<32 | uint64(pb)<<16 | uint64(proto)
	h := (w0^x.seed0)*hashMul0 ^ (w1^x.seed1)*hashMul1
	h ^= h >> 32
	h *= hashMul2
	return uint32(h>>32) | 1
}

// remove deletes the slot that holds flow i, whose key has tag tag, and
// shifts the following entries of its probe run back over the hole. It does
// nothing if i is not in the index.
func (x *flowIndex) remove(tag, i uint32) {
	slots := x.slots
	mask := uint32(len(slots) - 1)
	p := tag >> x.shift
	for {
		p &= mask
		s := slots[p]
		if s.tag == 0 {
			return
		}
		if s.flow == i && s.tag == tag {
			break
		}
		p++
	}
	hole := p
	for j := (p + 1) & mask; ; j = (j + 1) & mask {
		s := slots[j]
		if s.tag == 0 {
			break
		}
		// s may fill the hole if the hole lies on its probe path, i.e.
		// between its home and j (cyclically).
		home := s.tag >> x.shift
		if (j-home)&mask >= (j-hole)&mask {
			slots[hole] = s
			hole = j
		}
	}
	slots[hole] = indexSlot{}
}
