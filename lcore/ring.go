package lcore

import "sync/atomic"

// Ring is a bounded single-producer single-consumer ring of packets with
// buffers of its own: Push copies a frame in, the consumer works on the
// slots in place and releases them. It carries handed-over packets between
// workers and frames from workers to the management core. The producer and
// the consumer are each one goroutine; neither ever blocks.
type Ring struct {
	_    [64]byte
	head atomic.Uint64 // next slot to fill; written by the producer
	_    [56]byte
	tail atomic.Uint64 // next slot to consume; written by the consumer
	_    [56]byte

	slots []Packet
	mask  uint64
	// producer-private
	cachedTail uint64
	// Dropped counts frames Push refused because the ring was full; it is
	// written by the producer only.
	Dropped atomic.Uint64
}

// NewRing returns a ring of size slots (rounded up to a power of two) with
// buffers of bufSize bytes.
func NewRing(size, bufSize int) *Ring {
	n := 1
	for n < size {
		n <<= 1
	}
	r := &Ring{slots: make([]Packet, n), mask: uint64(n - 1)}
	mem := make([]byte, n*bufSize)
	for i := range r.slots {
		r.slots[i].Data = mem[i*bufSize : i*bufSize : (i+1)*bufSize]
	}
	return r
}

// Push copies p into the ring (producer side). It reports false, and
// counts a drop, when the ring is full or the frame doesn't fit a slot.
func (r *Ring) Push(p *Packet) bool {
	h := r.head.Load()
	if h-r.cachedTail > r.mask {
		r.cachedTail = r.tail.Load()
		if h-r.cachedTail > r.mask {
			r.Dropped.Store(r.Dropped.Load() + 1)
			return false
		}
	}
	s := &r.slots[h&r.mask]
	if len(p.Data) > cap(s.Data) {
		r.Dropped.Store(r.Dropped.Load() + 1)
		return false
	}
	s.Data = s.Data[:len(p.Data)]
	copy(s.Data, p.Data)
	s.Flags, s.Port, s.FragSport, s.FragDport = p.Flags, p.Port, p.FragSport, p.FragDport
	r.head.Store(h + 1)
	return true
}

// Peek fills out with the oldest unconsumed slots (consumer side) and
// returns how many. The slots stay valid until Release.
func (r *Ring) Peek(out []*Packet) int {
	t := r.tail.Load()
	avail := r.head.Load() - t
	n := min(uint64(len(out)), avail)
	for i := uint64(0); i < n; i++ {
		out[i] = &r.slots[(t+i)&r.mask]
	}
	return int(n)
}

// Release frees the n oldest slots (consumer side) after Peek.
func (r *Ring) Release(n int) { r.tail.Add(uint64(n)) }

// Len returns the number of frames waiting.
func (r *Ring) Len() int { return int(r.head.Load() - r.tail.Load()) }
