package nat

// The flow table's two indexes: open addressing with linear probing and
// backward-shift deletion (no tombstones). A slot is {tag, flow}: tag is the
// upper half of the key's 64-bit hash with the low bit forced to 1 (0 marks
// an empty slot), flow the record index.
//
// A key's home slot is a multiply-shift of its tag (tag*size >> 32, which
// maps the tag onto [0, size) in proportion, with no power-of-two size
// needed). So the home of any occupied slot is known from the slot alone,
// and deletion shifts entries back without loading their records; the price
// is that two keys with the same home differ in only about 31-log2(size)
// tag bits, which is still well under one false tag match per hundred
// lookups. Owned by the worker that owns the table; nothing here allocates.

// indexSlot is one slot of an index.
type indexSlot struct {
	tag  uint32 // upper half of the key hash | 1; 0 = empty
	flow uint32 // record index
}

// flowIndex is one open-addressing index.
type flowIndex struct {
	slots        []indexSlot // at most half full
	size         uint32      // len(slots)
	seed0, seed1 uint64
}

// Multipliers of the key hash (odd 64-bit constants with well spread bits).
const (
	hashMul0 = 0x9e3779b97f4a7c15
	hashMul1 = 0xc2b2ae3d27d4eb4f
	hashMul2 = 0xff51afd7ed558ccd
)

// newFlowIndex returns an empty index sized for capacity keys: exactly
// twice capacity slots (at least 16), so it is at most half full and probe
// runs stay short. A power-of-two size would cost up to twice that memory
// (at 10 M flows, 54 bytes per flow for the two indexes instead of 32).
func newFlowIndex(capacity int, seed0, seed1 uint64) flowIndex {
	size := max(16, 2*capacity)
	return flowIndex{
		slots: make([]indexSlot, size),
		size:  uint32(size),
		seed0: seed0,
		seed1: seed1,
	}
}

// home returns the home slot of a tag.
func (x *flowIndex) home(tag uint32) uint32 { return uint32(uint64(tag) * uint64(x.size) >> 32) }

// homeAddr returns the address of the home slot of tag, a prefetch hint.
func (x *flowIndex) homeAddr(tag uint32) uintptr {
	if h := x.home(tag); h < uint32(len(x.slots)) {
		return addrOf(&x.slots[h])
	}
	return 0
}

// next returns the slot after p, wrapping at the end.
func (x *flowIndex) next(p uint32) uint32 {
	if p++; p == x.size {
		return 0
	}
	return p
}

// dist returns how far slot j is past slot from along the probe order.
func (x *flowIndex) dist(from, j uint32) uint32 {
	if j >= from {
		return j - from
	}
	return j + x.size - from
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
	slots := x.slots[:x.size]
	p := x.home(tag)
	for {
		s := slots[p]
		if s.tag == 0 {
			return
		}
		if s.flow == i && s.tag == tag {
			break
		}
		p = x.next(p)
	}
	hole := p
	for j := x.next(p); ; j = x.next(j) {
		s := slots[j]
		if s.tag == 0 {
			break
		}
		// s may fill the hole if the hole lies on its probe path, i.e.
		// between its home and j (cyclically).
		if x.dist(x.home(s.tag), j) >= x.dist(hole, j) {
			slots[hole] = s
			hole = j
		}
	}
	slots[hole] = indexSlot{}
}
