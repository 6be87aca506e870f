package portalloc

// HotK is the number of (member, destination) pairs a worker's hot set
// holds.
const HotK = 16

// HotEntry is one pair of a hot set: a member's ports in use towards one
// destination against the size of its block, with the creations and
// releases counted since the pair entered the set.
type HotEntry struct {
	// Key is the member and destination.
	Key Key
	// Scope is the flow scope (nat.Flow.Scope: pool index, or default
	// SNAT) the pair's last flow was created under.
	Scope uint16
	// InUse is the number of ports in use, as the worker's Usage counts
	// them.
	InUse uint32
	// Size is the size of the member's block when its last flow was
	// created.
	Size uint32
	// Created and Released count the pair's flows created and released
	// since it entered the set (Serial).
	Created, Released uint64
	// Serial numbers the pair's entry into the set: the counters of two
	// samples with the same Serial may be subtracted.
	Serial uint32
}

// Hot is a worker's hot set: the HotK pairs closest to exhaustion
// (highest InUse/Size), kept up to date on flow creation and release only,
// so established packets never touch it. It is fixed-size and never
// allocates.
//
// A pair enters on a creation when the set has room or when its ratio
// beats the set's lowest; it leaves when its last port is released or
// when a pair with a higher ratio takes its place. A pair outside the set
// whose ratio came to exceed members' through their releases enters at its
// next creation: a pair heading for exhaustion is one that creates flows.
//
// Threading: a Hot belongs to one worker, like the Usage it mirrors; the
// worker publishes copies of its entries (Entries) for the management
// core.
type Hot struct {
	e       [HotK]HotEntry
	n       int
	min     int // index of the entry with the lowest ratio (n > 0)
	serial  uint32
	version uint64
	// filter has hotBit of every entry's key set: a key whose bit is
	// clear is not in the set, so most releases and creations, of pairs
	// far from exhaustion, don't scan the entries.
	filter uint64
}

// hotBit is a key's bit in Hot.filter.
func hotBit(k Key) uint64 {
	h := (uint64(k.Private)<<32 | uint64(k.Remote)) ^ uint64(k.RemotePort)<<8 ^ uint64(k.Proto)
	h *= 0x9E3779B97F4A7C15
	return 1 << (h >> 58)
}

// refilter recomputes the filter after an entry left the set.
func (h *Hot) refilter() {
	h.filter = 0
	for i := 0; i < h.n; i++ {
		h.filter |= hotBit(h.e[i].Key)
	}
}

// lower reports whether ratio a.InUse/a.Size is below inUse/size.
func lower(a *HotEntry, inUse, size uint32) bool {
	return uint64(a.InUse)*uint64(max(size, 1)) < uint64(inUse)*uint64(max(a.Size, 1))
}

func (h *Hot) find(k Key) int {
	if h.filter&hotBit(k) == 0 {
		return -1
	}
	for i := 0; i < h.n; i++ {
		if h.e[i].Key == k {
			return i
		}
	}
	return -1
}

// findMin recomputes the index of the lowest entry.
func (h *Hot) findMin() {
	h.min = 0
	for i := 1; i < h.n; i++ {
		if lower(&h.e[i], h.e[h.min].InUse, h.e[h.min].Size) {
			h.min = i
		}
	}
}

// Created notes a port taken by pair k, which now has n ports in use
// (Usage.Inc's result) out of a block of size, under scope.
func (h *Hot) Created(k Key, n, size int, scope uint16) {
	inUse, sz := uint32(n), uint32(max(size, 0))
	i := h.find(k)
	switch {
	case i >= 0:
	case h.n < HotK:
		i = h.n
		h.n++
		h.serial++
		h.e[i] = HotEntry{Key: k, Serial: h.serial}
		h.filter |= hotBit(k)
	case lower(&h.e[h.min], inUse, sz):
		i = h.min
		h.serial++
		h.e[i] = HotEntry{Key: k, Serial: h.serial}
		h.refilter()
	default:
		return
	}
	e := &h.e[i]
	e.InUse, e.Size, e.Scope = inUse, sz, scope
	e.Created++
	h.findMin()
	h.version++
}

// Released notes a port of pair k released, which now has n ports in use
// (Usage.Dec's result). The pair leaves the set at 0.
func (h *Hot) Released(k Key, n int) {
	i := h.find(k)
	if i < 0 {
		return
	}
	h.version++
	if n <= 0 {
		h.n--
		h.e[i] = h.e[h.n]
		h.e[h.n] = HotEntry{}
		h.refilter()
		h.findMin()
		return
	}
	e := &h.e[i]
	e.InUse = uint32(n)
	e.Released++
	if i != h.min && lower(e, h.e[h.min].InUse, h.e[h.min].Size) {
		h.min = i
	}
}

// Len returns the number of pairs in the set.
func (h *Hot) Len() int { return h.n }

// Entries returns the set's pairs, in no particular order. The slice
// aliases the set: copy what must outlive the next Created or Released.
func (h *Hot) Entries() []HotEntry { return h.e[:h.n] }

// Version changes whenever the set does, so a publisher can skip
// unchanged sets.
func (h *Hot) Version() uint64 { return h.version }
