package portalloc

// PickProbes is the number of uniformly random probes Pick makes before it
// falls back to a scan of the whole block.
const PickProbes = 8

// Pick chooses a free port of block b for a new flow towards one
// destination [S2]: within the free ports the choice is random (RFC 6056
// style), not sequential. used reports whether a port is already taken
// towards that destination; the caller answers it from its flow table.
//
// Pick first tries PickProbes uniformly random ports of the block. If they
// are all used it scans the whole block once, starting at a random offset
// and wrapping around, so a free port is found whenever one exists:
// ok is false only when every port of the block is used (or the block is
// empty, Last < First). The scan makes the choice in a nearly full block
// less uniform (a free port right after a long used run is more likely),
// which is the price of exact exhaustion at bounded cost.
//
// Callers that keep a Usage count can skip Pick when the count already
// equals b.Size(): the destination is exhausted [S4].
//
// Pick runs on the worker that owns r; it does not allocate, and used does
// not escape, so a closure over the caller's locals stays on its stack.
func Pick(b Block, r *Rand, used func(port uint16) bool) (port uint16, ok bool) {
	if b.Last < b.First {
		return 0, false
	}
	n := b.Size()
	for i := 0; i < PickProbes; i++ {
		p := b.First + uint16(r.Intn(n))
		if !used(p) {
			return p, true
		}
	}
	off := r.Intn(n)
	for i := 0; i < n; i++ {
		p := b.First + uint16(off)
		if !used(p) {
			return p, true
		}
		off++
		if off == n {
			off = 0
		}
	}
	return 0, false
}

// PickFrom is Pick with a first candidate: hint is taken when it lies in b
// and is free; otherwise PickFrom is Pick. A caller that draws hint
// uniformly from b with r ahead of time (to prefetch what used(hint) will
// read, overlapping the memory accesses of several new flows) keeps Pick's
// uniform choice among free ports.
func PickFrom(b Block, hint uint16, r *Rand, used func(port uint16) bool) (port uint16, ok bool) {
	if b.Contains(hint) && !used(hint) {
		return hint, true
	}
	return Pick(b, r, used)
}
