package lcore

import (
	"sync/atomic"

	"github.com/natgw/natgw/portalloc"
)

// This file publishes a worker's hot set (portalloc.Hot: the member and
// destination pairs closest to exhaustion) to the management core without
// allocating: a fixed array of atomic words under a sequence counter (a
// seqlock). The worker stores, between bursts and only when the set
// changed; any goroutine loads a consistent copy, retrying while a store
// is under way.

// hotWords is the number of 64-bit words one published entry takes.
const hotWords = 5

// HotCounters is a worker's published hot set.
type HotCounters struct {
	seq     atomic.Uint64 // odd while the worker stores
	n       atomic.Uint64
	e       [portalloc.HotK][hotWords]atomic.Uint64
	version uint64 // the worker's: the set's version last stored
}

// store publishes h if it changed since the last store (worker only).
func (c *HotCounters) store(h *portalloc.Hot) {
	if v := h.Version(); v == c.version {
		return
	} else {
		c.version = v
	}
	c.seq.Add(1)
	es := h.Entries()
	for i := range es {
		e := &es[i]
		w := &c.e[i]
		w[0].Store(uint64(e.Key.Private)<<32 | uint64(e.Key.Remote))
		w[1].Store(uint64(e.Key.RemotePort)<<48 | uint64(e.Key.Proto)<<40 | uint64(e.Scope)<<24)
		w[2].Store(uint64(e.InUse)<<32 | uint64(e.Size))
		w[3].Store(e.Created)
		w[4].Store(e.Released<<32>>32 | uint64(e.Serial)<<32)
	}
	c.n.Store(uint64(len(es)))
	c.seq.Add(1)
}

// Load appends a consistent copy of the published hot set to dst and
// returns it. Released counts are published modulo 2^32. It gives up
// (returning dst unchanged, ok false) if the worker kept storing through
// many attempts.
func (c *HotCounters) Load(dst []portalloc.HotEntry) (out []portalloc.HotEntry, ok bool) {
	for range 1000 {
		s1 := c.seq.Load()
		if s1&1 != 0 {
			continue
		}
		out = dst
		n := min(int(c.n.Load()), portalloc.HotK)
		for i := range n {
			w := &c.e[i]
			w0, w1, w2, w3, w4 := w[0].Load(), w[1].Load(), w[2].Load(), w[3].Load(), w[4].Load()
			out = append(out, portalloc.HotEntry{
				Key: portalloc.Key{Private: uint32(w0 >> 32), Remote: uint32(w0),
					RemotePort: uint16(w1 >> 48), Proto: uint8(w1 >> 40)},
				Scope: uint16(w1 >> 24), InUse: uint32(w2 >> 32), Size: uint32(w2),
				Created: w3, Released: w4 << 32 >> 32, Serial: uint32(w4 >> 32),
			})
		}
		if c.seq.Load() == s1 {
			return out, true
		}
	}
	return dst, false
}
