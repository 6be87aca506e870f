package portalloc

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Default-SNAT block assignment [S1 item 4].
//
// Shared state and who writes it:
//
//   - slots: a fixed-capacity, lock-free open-addressing table keyed by
//     private address. Each slot is one atomic 64-bit word:
//     address<<32 | state<<30 | block index. Workers and the management
//     core change it only with compare-and-swap.
//   - free: a lock-free stack (Treiber stack with a version tag against ABA)
//     of the blocks no address holds. Workers pop on assignment and push
//     back a block they popped but could not install; the management core
//     pushes reclaimed blocks.
//   - flows: one array of flow counts per worker, indexed by block. Only
//     that worker adds to it (atomically, so the management core can read
//     it); the arrays are padded so that no two workers share a cache line.
//   - idle: the management core's own bookkeeping, indexed by slot.
//   - changed, changes: when each slot last gained or lost a block
//     (UnixNano, written just before the CAS that does it) and a count of
//     such changes, so the management core can notice assignments made
//     by workers with one atomic load and date them (ScanHoldings). A
//     worker writes them only when it installs a block, never per flow.
//
// Slot states. A slot is empty (the word is 0) until a worker installs an
// address in it; from then on the slot belongs to that address for the life
// of the table (keys are never removed or moved, so a probe can't miss an
// address that is present, and two workers inserting the same address meet
// in the same first empty slot of its probe sequence, where only one CAS
// wins). The block part moves through
//
//	active --(management: no flows for idle)--> draining
//	draining --(worker: Assign/Acquire)--> active
//	draining --(management: still no flows on its next pass)--> free
//	free --(worker: Assign/Acquire pops a block)--> active
//
// Flows pin a block. A worker creating a flow calls Acquire, which adds 1
// to its count for the block first and then re-reads the slot: if it still
// holds the block (active, or draining, which it CASes back to active) the
// flow is safe; if the management core freed it in between, the worker
// takes its count back and starts again. The management core frees a
// draining slot only after reading zero counts on every worker, with a CAS
// from the exact draining word. Whatever the interleaving, either the
// management core sees the worker's count, or its CAS fails because the
// worker made the slot active, or the worker sees the slot free and backs
// off: a block is never freed while a counted flow uses it, so no block is
// ever held by two addresses.
//
// Assign alone does not pin: a block returned by Assign may be reclaimed
// once idle has passed without flows. Flow creation must use Acquire.

// Slot word layout.
const (
	slotStateShift = 30
	slotBlockMask  = 1<<slotStateShift - 1

	slotActive   = 1
	slotDraining = 2
	slotFree     = 3
)

// maxDefaultSNATAddresses bounds the address table.
const maxDefaultSNATAddresses = 1 << 26

// DefaultAddresses is the address-table capacity used when
// DefaultSNATConfig.Addresses is 0.
const DefaultAddresses = 65536

// cacheLinePad is the number of int32 counters in a 64-byte cache line;
// per-worker count arrays are padded by a line on each side.
const cacheLinePad = 64 / 4

func packSlot(private uint32, state uint64, block int) uint64 {
	return uint64(private)<<32 | state<<slotStateShift | uint64(block)
}

func slotAddress(w uint64) uint32 { return uint32(w >> 32) }
func slotState(w uint64) uint64   { return w >> slotStateShift & 3 }
func slotBlock(w uint64) int      { return int(w & slotBlockMask) }

// DefaultSNATConfig describes a DefaultSNAT.
type DefaultSNATConfig struct {
	// Frontends are the default frontends' public addresses, host byte order.
	Frontends []uint32
	// PortsPerMember is the block size (see CheckBlockSize).
	PortsPerMember int
	// Workers is the number of worker cores that report flows.
	Workers int
	// Addresses is the number of distinct private addresses the table can
	// ever hold (0 means DefaultAddresses). An address keeps its slot, not
	// its block, after its block is reclaimed, so this bounds the addresses
	// seen over the life of the table, not only those holding a block.
	Addresses int
}

// DefaultSNATStats is a snapshot of a DefaultSNAT's occupancy.
type DefaultSNATStats struct {
	// Blocks is the number of blocks laid out on the frontends.
	Blocks int
	// Assigned is the number of blocks held by an address.
	Assigned int
	// Addresses is the number of address-table slots in use.
	Addresses int
	// AddressCapacity is the number of addresses the table can hold.
	AddressCapacity int
}

// workerFlows is one worker's flow count per block.
type workerFlows struct {
	counts []atomic.Int32
}

// idleMark is the management core's bookkeeping for one slot.
type idleMark struct {
	since   int64 // UnixNano when the block was first seen without flows
	seen    bool  // since is set
	drained bool  // the management core made the slot draining
}

// DefaultSNAT assigns port blocks on the default frontends to private
// addresses on first use [S1]. Blocks of PortsPerMember ports are laid out
// on the frontends like a pool's (Layout, as many as fit), and an address
// keeps its block, whichever worker sees its flows, until it has had no
// flows for a while and the management core reclaims it.
//
// Threading: Assign, Acquire, Release, AddFlows and Lookup may be called
// concurrently from any goroutine and use no locks; each worker passes its
// own index to the methods that count flows. Reclaim must be called from a
// single goroutine (the management core) at a time; Stats and Flows may be
// called from anywhere. The protocol is described at the top of
// defaultsnat.go.
type DefaultSNAT struct {
	blocks    []Block
	slots     []atomic.Uint64
	mask      uint64
	shift     uint
	addrCap   int
	addresses atomic.Int64
	assigned  atomic.Int64

	freeHead atomic.Uint64   // version<<32 | (top block index + 1); 0 = empty
	freeNext []atomic.Uint32 // next block index + 1 below each stacked block

	flows []workerFlows
	idle  []idleMark

	changed []atomic.Int64 // per slot: UnixNano of its last block change
	changes atomic.Uint64  // block installs and frees so far
}

// NewDefaultSNAT lays out the blocks and returns a DefaultSNAT with every
// block free.
func NewDefaultSNAT(cfg DefaultSNATConfig) (*DefaultSNAT, error) {
	if len(cfg.Frontends) == 0 {
		return nil, errors.New("default SNAT has no frontends")
	}
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("default SNAT needs at least one worker, got %d", cfg.Workers)
	}
	if err := CheckBlockSize(cfg.PortsPerMember); err != nil {
		return nil, err
	}
	addrs := cfg.Addresses
	if addrs == 0 {
		addrs = DefaultAddresses
	}
	if addrs < 1 || addrs > maxDefaultSNATAddresses {
		return nil, fmt.Errorf("default SNAT address capacity %d is not between 1 and %d", addrs, maxDefaultSNATAddresses)
	}
	count := PortsPerAddress / cfg.PortsPerMember * len(cfg.Frontends)
	blocks, err := Layout(cfg.Frontends, count, cfg.PortsPerMember)
	if err != nil {
		return nil, err
	}
	logSize := bits.Len(uint(2*addrs - 1))
	size := 1 << logSize
	d := &DefaultSNAT{
		blocks:   blocks,
		slots:    make([]atomic.Uint64, size),
		mask:     uint64(size - 1),
		shift:    uint(64 - logSize),
		addrCap:  addrs,
		freeNext: make([]atomic.Uint32, len(blocks)),
		flows:    make([]workerFlows, cfg.Workers),
		idle:     make([]idleMark, size),
		changed:  make([]atomic.Int64, size),
	}
	// Stack the blocks so that block 0 (first frontend, lowest ports) is on
	// top: assignment fills the first frontend first.
	for i := range blocks {
		if i+1 < len(blocks) {
			d.freeNext[i].Store(uint32(i + 2))
		}
	}
	if len(blocks) > 0 {
		d.freeHead.Store(1)
	}
	for w := range d.flows {
		all := make([]atomic.Int32, len(blocks)+2*cacheLinePad)
		d.flows[w].counts = all[cacheLinePad : cacheLinePad+len(blocks) : cacheLinePad+len(blocks)]
	}
	return d, nil
}

// home returns the first slot probed for private (Fibonacci hashing: the
// top bits of a multiply by 2^64/phi).
func (d *DefaultSNAT) home(private uint32) uint64 {
	return (uint64(private) * 0x9e3779b97f4a7c15) >> d.shift
}

// pop takes a block off the free stack; ok is false when none is free.
func (d *DefaultSNAT) pop() (int, bool) {
	for {
		old := d.freeHead.Load()
		top := uint32(old)
		if top == 0 {
			return 0, false
		}
		next := d.freeNext[top-1].Load()
		if d.freeHead.CompareAndSwap(old, (old>>32+1)<<32|uint64(next)) {
			return int(top - 1), true
		}
	}
}

// push returns block b to the free stack.
func (d *DefaultSNAT) push(b int) {
	for {
		old := d.freeHead.Load()
		d.freeNext[b].Store(uint32(old))
		if d.freeHead.CompareAndSwap(old, (old>>32+1)<<32|uint64(b+1)) {
			return
		}
	}
}

// find returns the slot holding private, or -1.
func (d *DefaultSNAT) find(private uint32) int {
	i := d.home(private)
	for range d.slots {
		w := d.slots[i].Load()
		if w == 0 {
			return -1
		}
		if slotAddress(w) == private {
			return int(i)
		}
		i = (i + 1) & d.mask
	}
	return -1
}

// assign returns the slot of private and the block it holds, installing
// the address and a block as needed. The slot is active, or was active an
// instant ago.
func (d *DefaultSNAT) assign(private uint32) (slot, block int, ok bool) {
	i := d.home(private)
	for range d.slots {
		s := &d.slots[i]
		for {
			w := s.Load()
			if w == 0 {
				// Reserve room for the address first, so the table never
				// holds more than addrCap addresses and always keeps an
				// empty slot to end a probe.
				if d.addresses.Add(1) > int64(d.addrCap) {
					d.addresses.Add(-1)
					return 0, 0, false
				}
				b, ok := d.pop()
				if !ok {
					d.addresses.Add(-1)
					return 0, 0, false
				}
				d.changed[i].Store(time.Now().UnixNano())
				if s.CompareAndSwap(0, packSlot(private, slotActive, b)) {
					d.assigned.Add(1)
					d.changes.Add(1)
					return int(i), b, true
				}
				d.push(b)
				d.addresses.Add(-1)
				continue // someone filled this slot: look at what they wrote
			}
			if slotAddress(w) != private {
				break // next slot
			}
			switch slotState(w) {
			case slotActive:
				return int(i), slotBlock(w), true
			case slotDraining:
				if s.CompareAndSwap(w, packSlot(private, slotActive, slotBlock(w))) {
					return int(i), slotBlock(w), true
				}
			default: // free
				b, ok := d.pop()
				if !ok {
					return 0, 0, false
				}
				d.changed[i].Store(time.Now().UnixNano())
				if s.CompareAndSwap(w, packSlot(private, slotActive, b)) {
					d.assigned.Add(1)
					d.changes.Add(1)
					return int(i), b, true
				}
				d.push(b)
			}
		}
		i = (i + 1) & d.mask
	}
	return 0, 0, false
}

// Assign returns the block of private, assigning a free block when it has
// none. ok is false when every block is taken (the caller counts
// port_exhausted) or the address table is full. Two workers assigning the
// same new address at once get the same block.
//
// Assign does not pin the block: use Acquire when creating a flow.
func (d *DefaultSNAT) Assign(private uint32) (Block, bool) {
	_, b, ok := d.assign(private)
	if !ok {
		return Block{}, false
	}
	return d.blocks[b], true
}

// Lookup returns the block private holds, without assigning one or
// changing its state.
func (d *DefaultSNAT) Lookup(private uint32) (Block, bool) {
	s := d.find(private)
	if s < 0 {
		return Block{}, false
	}
	w := d.slots[s].Load()
	if st := slotState(w); st != slotActive && st != slotDraining {
		return Block{}, false
	}
	return d.blocks[slotBlock(w)], true
}

// Acquire returns the block of private, assigning one if needed, and counts
// one more flow of it on worker. The block stays assigned to private at
// least until the matching Release. ok is false (nothing counted) when no
// block is free, the address table is full or worker is out of range.
func (d *DefaultSNAT) Acquire(worker int, private uint32) (Block, bool) {
	if worker < 0 || worker >= len(d.flows) {
		return Block{}, false
	}
	b, ok := d.pin(d.flows[worker].counts, private, 1)
	if !ok {
		return Block{}, false
	}
	return d.blocks[b], true
}

// Release counts one flow of private less on worker. It does nothing when
// private holds no block or worker is out of range.
func (d *DefaultSNAT) Release(worker int, private uint32) {
	d.AddFlows(worker, private, -1)
}

// AddFlows adds delta to the number of flows worker counts for private. A
// positive delta pins the block like Acquire (assigning one if needed); a
// negative one releases flows. It returns false, counting nothing, when
// private has no block it can hold, worker is out of range or delta does
// not fit in an int32.
func (d *DefaultSNAT) AddFlows(worker int, private uint32, delta int) bool {
	if worker < 0 || worker >= len(d.flows) || delta < -math.MaxInt32 || delta > math.MaxInt32 {
		return false
	}
	counts := d.flows[worker].counts
	if delta > 0 {
		_, ok := d.pin(counts, private, int32(delta))
		return ok
	}
	if delta == 0 {
		return true
	}
	s := d.find(private)
	if s < 0 {
		return false
	}
	w := d.slots[s].Load()
	if st := slotState(w); st != slotActive && st != slotDraining {
		return false
	}
	counts[slotBlock(w)].Add(int32(delta))
	return true
}

// pin counts n flows on the block of private in counts, assigning a block
// if needed, and returns the block.
func (d *DefaultSNAT) pin(counts []atomic.Int32, private uint32, n int32) (int, bool) {
	for {
		slot, b, ok := d.assign(private)
		if !ok {
			return 0, false
		}
		if d.countOn(counts, private, slot, b, n) {
			return b, true
		}
	}
}

// countOn adds n to the count of block b, which assign found in slot for
// private, and checks that the slot still held b after the count became
// visible, taking a draining slot back to active. If the management core
// freed the block in between, it takes the count back and returns false:
// the caller assigns again (see the protocol at the top of the file).
func (d *DefaultSNAT) countOn(counts []atomic.Int32, private uint32, slot, b int, n int32) bool {
	c := &counts[b]
	c.Add(n)
	s := &d.slots[slot]
	for {
		w := s.Load()
		if slotBlock(w) != b || slotState(w) == slotFree {
			c.Add(-n)
			return false
		}
		if slotState(w) == slotActive {
			return true
		}
		if s.CompareAndSwap(w, packSlot(private, slotActive, b)) {
			return true
		}
	}
}

// blockFlows sums the flow counts of block b over the workers.
func (d *DefaultSNAT) blockFlows(b int) int64 {
	var total int64
	for w := range d.flows {
		total += int64(d.flows[w].counts[b].Load())
	}
	return total
}

// Flows returns the number of flows counted for private over all workers
// (0 when it holds no block).
func (d *DefaultSNAT) Flows(private uint32) int {
	s := d.find(private)
	if s < 0 {
		return 0
	}
	w := d.slots[s].Load()
	if st := slotState(w); st != slotActive && st != slotDraining {
		return 0
	}
	return int(d.blockFlows(slotBlock(w)))
}

// Reclaim returns to the free set the blocks of addresses that have had no
// flows on any worker for at least idle, and returns how many it freed.
//
// A block is released in two passes: the pass that finds it idle long
// enough marks its slot draining; the next pass frees it if it is still
// draining and still has no flows. Called every second, Reclaim frees a
// block between idle and idle plus one second after its last flow ended.
// Reclaim must not be called concurrently with itself.
func (d *DefaultSNAT) Reclaim(now time.Time, idle time.Duration) int {
	nowNs := now.UnixNano()
	freed := 0
	for i := range d.slots {
		s, m := &d.slots[i], &d.idle[i]
		w := s.Load()
		st := slotState(w)
		if w == 0 || st == slotFree {
			*m = idleMark{}
			continue
		}
		b := slotBlock(w)
		if d.blockFlows(b) != 0 {
			*m = idleMark{}
			if st == slotDraining {
				s.CompareAndSwap(w, packSlot(slotAddress(w), slotActive, b))
			}
			continue
		}
		if st == slotDraining {
			d.changed[i].Store(nowNs)
			if s.CompareAndSwap(w, packSlot(slotAddress(w), slotFree, 0)) {
				d.changes.Add(1)
				d.push(b)
				d.assigned.Add(-1)
				freed++
				*m = idleMark{}
			}
			continue
		}
		// Active without flows.
		if m.drained {
			// A worker took it back from draining: its idle time starts over.
			*m = idleMark{}
		}
		if !m.seen {
			m.since, m.seen = nowNs, true
		}
		if nowNs-m.since >= int64(idle) {
			if s.CompareAndSwap(w, packSlot(slotAddress(w), slotDraining, b)) {
				m.drained = true
			}
		}
	}
	return freed
}

// Stats returns the current occupancy. Under concurrent assignment the
// counts are each exact but not taken at one instant.
func (d *DefaultSNAT) Stats() DefaultSNATStats {
	return DefaultSNATStats{
		Blocks:          len(d.blocks),
		Assigned:        int(d.assigned.Load()),
		Addresses:       int(d.addresses.Load()),
		AddressCapacity: d.addrCap,
	}
}

// Holding is one address of a DefaultSNAT as ScanHoldings sees it.
type Holding struct {
	// Slot is the address-table slot: an address keeps its slot for the
	// life of the table, so it identifies the address between scans.
	Slot int
	// Private is the address.
	Private uint32
	// Index is the number of the block it holds, or -1 when it holds none
	// (its block was reclaimed).
	Index int
	// Block is the block it holds (zero when Index is -1).
	Block Block
	// Changed is when the slot last gained or lost a block, UnixNano: the
	// time of the assignment or reclamation that made it what it is.
	Changed int64
}

// Changes returns the number of block assignments and reclamations so
// far. It only grows; a caller that saw the same value before need not
// scan again.
func (d *DefaultSNAT) Changes() uint64 { return d.changes.Load() }

// ScanHoldings calls fn for every address in the table, holding a block
// or not, in slot order. It reads the table without changing it, so
// workers go on assigning meanwhile: an address assigned during the scan
// may or may not be seen, and is seen by the next scan (read Changes
// before scanning to know when one is due). An address seen with a block
// held it at the time of the read; Changed is written just before the
// change it dates, so it is at most the change's time, not later.
func (d *DefaultSNAT) ScanHoldings(fn func(Holding)) {
	for i := range d.slots {
		w := d.slots[i].Load()
		if w == 0 {
			continue
		}
		h := Holding{Slot: i, Private: slotAddress(w), Index: -1, Changed: d.changed[i].Load()}
		if st := slotState(w); st == slotActive || st == slotDraining {
			h.Index = slotBlock(w)
			h.Block = d.blocks[h.Index]
		}
		fn(h)
	}
}
