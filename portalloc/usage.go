package portalloc

import (
	"math/bits"
	"math/rand/v2"
	"unsafe"
)

// Key names one destination of one member for port accounting [S2]: a
// private address towards a remote address, remote port and protocol.
// Addresses and ports are in host byte order; Proto is the IP protocol
// number (6 TCP, 17 UDP, 1 ICMP, where RemotePort is 0 and the identifier is
// the port).
type Key struct {
	Private, Remote uint32
	RemotePort      uint16
	Proto           uint8
}

// usageEntry is one slot of the Usage table: 12 bytes of key, 4 of count,
// 16 bytes in all. A count of 0 marks an empty slot.
type usageEntry struct {
	key Key
	n   uint32
}

// Usage counts, for one worker, the SNAT ports in use per Key, so that port
// exhaustion [S4] is known without scanning the flow table and the
// utilisation gauge can be computed.
//
// It is a fixed-capacity open-addressing hash table with linear probing and
// backward-shift deletion (no tombstones): all memory is allocated by
// NewUsage, entries are 16 bytes, and the table has 4/3 as many slots as
// its capacity (not rounded to a power of two: a key's home slot is the
// high half of hash*size), so the load factor stays at or below 3/4. An
// entry exists while its count is above zero.
//
// Threading: a Usage belongs to one worker and is not safe for concurrent
// use; the management core reads it (Range) only through that worker, for
// example by asking the worker to run the function between bursts.
type Usage struct {
	slots []usageEntry
	size  uint64 // len(slots)
	seed  uint64
	len   int
	cap   int
}

// maxUsageCapacity bounds NewUsage so that its table size can't overflow.
const maxUsageCapacity = 1 << 30

// NewUsage returns an empty table for up to capacity keys. A capacity below
// 1 is taken as 1 and one above 2^30 as 2^30. The hash is seeded at random
// so that remote endpoints can't be chosen to collide.
func NewUsage(capacity int) *Usage {
	capacity = min(max(capacity, 1), maxUsageCapacity)
	// Room for capacity keys at a load of at most 3/4: 21.3 bytes per
	// key, and linear probes stay short. (Rounding up to a power of two
	// would cost up to 32.)
	size := max(2, (capacity*4+2)/3)
	return &Usage{
		slots: make([]usageEntry, size),
		size:  uint64(size),
		seed:  rand.Uint64(),
		cap:   capacity,
	}
}

// hash mixes the packed key with a folded 64x64->128-bit multiply (the
// wyhash mix) followed by a xorshift, so every key bit reaches the low bits
// that index the table.
func (u *Usage) hash(k Key) uint64 {
	a := uint64(k.Private)<<32 | uint64(k.Remote)
	b := uint64(k.RemotePort)<<8 | uint64(k.Proto)
	hi, lo := bits.Mul64(a^u.seed, b^wyIncrement)
	h := hi ^ lo
	return h ^ h>>29
}

// home returns the home slot of k: the hash mapped onto [0, size) in
// proportion.
func (u *Usage) home(k Key) uint64 {
	hi, _ := bits.Mul64(u.hash(k), u.size)
	return hi
}

// next returns the slot after i, wrapping at the end.
func (u *Usage) next(i uint64) uint64 {
	if i++; i == u.size {
		return 0
	}
	return i
}

// dist returns how far slot j is past slot from along the probe order.
func (u *Usage) dist(from, j uint64) uint64 {
	if j >= from {
		return j - from
	}
	return j + u.size - from
}

// HomeAddr returns the address of k's home slot: a prefetch hint for a
// caller that will Count or Inc k shortly and wants the cache miss to
// overlap with other work. It reads nothing.
func (u *Usage) HomeAddr(k Key) uintptr { return uintptr(unsafe.Pointer(&u.slots[u.home(k)])) }

// Count returns the number of ports in use for k (0 when it has none).
func (u *Usage) Count(k Key) int {
	for i := u.home(k); ; i = u.next(i) {
		e := &u.slots[i]
		if e.n == 0 {
			return 0
		}
		if e.key == k {
			return int(e.n)
		}
	}
}

// Inc counts one more port in use for k and returns the new count. ok is
// false, and nothing changes, when k is new and the table already holds
// its capacity of keys; the caller drops the flow (flow_table_full).
func (u *Usage) Inc(k Key) (n int, ok bool) {
	for i := u.home(k); ; i = u.next(i) {
		e := &u.slots[i]
		if e.n == 0 {
			if u.len >= u.cap {
				return 0, false
			}
			e.key, e.n = k, 1
			u.len++
			return 1, true
		}
		if e.key == k {
			e.n++
			return int(e.n), true
		}
	}
}

// Dec counts one port less in use for k and returns the new count; the
// entry is removed when it reaches 0. Dec of a key that has no entry does
// nothing and returns 0.
func (u *Usage) Dec(k Key) int {
	i := u.home(k)
	for {
		e := &u.slots[i]
		if e.n == 0 {
			return 0
		}
		if e.key == k {
			break
		}
		i = u.next(i)
	}
	if e := &u.slots[i]; e.n > 1 {
		e.n--
		return int(e.n)
	}
	u.remove(i)
	return 0
}

// remove empties slot i and shifts later entries of its probe run back, so
// that no lookup meets a hole before reaching its key.
func (u *Usage) remove(i uint64) {
	j := i
	for {
		j = u.next(j)
		e := &u.slots[j]
		if e.n == 0 {
			break
		}
		// The entry at j may move to the hole at i unless its home slot lies
		// cyclically in (i, j]: then a lookup from home never passes i.
		if u.dist(u.home(e.key), j) < u.dist(i, j) {
			continue
		}
		u.slots[i] = *e
		i = j
	}
	u.slots[i] = usageEntry{}
	u.len--
}

// Len returns the number of keys with ports in use.
func (u *Usage) Len() int { return u.len }

// MemoryBytes returns the size of the table's storage.
func (u *Usage) MemoryBytes() int { return len(u.slots) * int(unsafe.Sizeof(usageEntry{})) }

// Cap returns the number of keys the table can hold.
func (u *Usage) Cap() int { return u.cap }

// Range calls fn for each key with ports in use and its count, in no
// particular order, until fn returns false. fn must not modify u.
func (u *Usage) Range(fn func(k Key, n int) bool) {
	for i := range u.slots {
		if e := &u.slots[i]; e.n != 0 && !fn(e.key, int(e.n)) {
			return
		}
	}
}
