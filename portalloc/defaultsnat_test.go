package portalloc

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	dsFE1 = 0xC6130064 // 198.19.0.100
	dsFE2 = 0xC6130065 // 198.19.0.101
)

func newTestDefaultSNAT(t testing.TB, cfg DefaultSNATConfig) *DefaultSNAT {
	t.Helper()
	if cfg.Frontends == nil {
		cfg.Frontends = []uint32{dsFE1, dsFE2}
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.Addresses == 0 {
		cfg.Addresses = 1024 // small table: Reclaim scans it all
	}
	d, err := NewDefaultSNAT(cfg)
	require.NoError(t, err)
	return d
}

func TestNewDefaultSNAT(t *testing.T) {
	tests := []struct {
		name       string
		cfg        DefaultSNATConfig
		wantErr    string
		wantBlocks int
	}{
		{"1024-port blocks on two frontends", DefaultSNATConfig{Frontends: []uint32{dsFE1, dsFE2}, PortsPerMember: 1024, Workers: 2}, "", 126},
		{"8-port blocks", DefaultSNATConfig{Frontends: []uint32{dsFE1}, PortsPerMember: 8, Workers: 1}, "", 8064},
		{"whole address", DefaultSNATConfig{Frontends: []uint32{dsFE1}, PortsPerMember: PortsPerAddress, Workers: 1, Addresses: 1}, "", 1},
		{"no frontends", DefaultSNATConfig{PortsPerMember: 1024, Workers: 1}, "no frontends", 0},
		{"no workers", DefaultSNATConfig{Frontends: []uint32{dsFE1}, PortsPerMember: 1024}, "at least one worker", 0},
		{"bad block size", DefaultSNATConfig{Frontends: []uint32{dsFE1}, PortsPerMember: 1000 + 1, Workers: 1}, "not a multiple of 8", 0},
		{"zero block size", DefaultSNATConfig{Frontends: []uint32{dsFE1}, Workers: 1}, "not a multiple of 8", 0},
		{"negative address capacity", DefaultSNATConfig{Frontends: []uint32{dsFE1}, PortsPerMember: 1024, Workers: 1, Addresses: -1}, "address capacity", 0},
		{"huge address capacity", DefaultSNATConfig{Frontends: []uint32{dsFE1}, PortsPerMember: 1024, Workers: 1, Addresses: 1 << 40}, "address capacity", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDefaultSNAT(tt.cfg)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			st := d.Stats()
			assert.Equal(t, tt.wantBlocks, st.Blocks)
			assert.Zero(t, st.Assigned)
			assert.Zero(t, st.Addresses)
			if tt.cfg.Addresses == 0 {
				assert.Equal(t, DefaultAddresses, st.AddressCapacity)
			}
		})
	}
}

func TestDefaultSNATAssign(t *testing.T) {
	d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024})
	const a, b = 0x0A000001, 0x0A000002

	_, ok := d.Lookup(a)
	assert.False(t, ok, "no block before first use")

	ba, ok := d.Assign(a)
	require.True(t, ok)
	assert.Equal(t, Block{Public: dsFE1, First: 1024, Last: 2047}, ba, "first block of the first frontend")
	bb, ok := d.Assign(b)
	require.True(t, ok)
	assert.Equal(t, Block{Public: dsFE1, First: 2048, Last: 3071}, bb)

	again, ok := d.Assign(a)
	require.True(t, ok)
	assert.Equal(t, ba, again, "an address keeps its block")
	got, ok := d.Lookup(b)
	require.True(t, ok)
	assert.Equal(t, bb, got)
	assert.Equal(t, DefaultSNATStats{Blocks: 126, Assigned: 2, Addresses: 2, AddressCapacity: 1024}, d.Stats())
}

func TestDefaultSNATExhaustion(t *testing.T) {
	t.Run("all blocks taken", func(t *testing.T) {
		// 21504-port blocks: three per address, six on two frontends.
		d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 21504})
		seen := map[Block]bool{}
		for i := range uint32(6) {
			blk, ok := d.Assign(0x0A000100 + i)
			require.True(t, ok, "address %d", i)
			assert.False(t, seen[blk], "block %v given twice", blk)
			seen[blk] = true
		}
		_, ok := d.Assign(0x0A000200)
		assert.False(t, ok)
		_, ok = d.Acquire(0, 0x0A000200)
		assert.False(t, ok)
		assert.Equal(t, 0, d.Flows(0x0A000200))
		blk, ok := d.Assign(0x0A000100)
		assert.True(t, ok, "holders keep their blocks")
		assert.Equal(t, Block{Public: dsFE1, First: 1024, Last: 1024 + 21504 - 1}, blk)
	})
	t.Run("address table full", func(t *testing.T) {
		d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024, Addresses: 2})
		for i := range uint32(2) {
			_, ok := d.Assign(0x0A000100 + i)
			require.True(t, ok)
		}
		_, ok := d.Assign(0x0A000300)
		assert.False(t, ok)
		assert.Equal(t, 2, d.Stats().Addresses)
		assert.Equal(t, 2, d.Stats().Assigned)
	})
}

func TestDefaultSNATBadInput(t *testing.T) {
	d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024})
	const a = 0x0A000001
	tests := []struct {
		name string
		call func() bool
	}{
		{"acquire on a negative worker", func() bool { _, ok := d.Acquire(-1, a); return ok }},
		{"acquire on a worker out of range", func() bool { _, ok := d.Acquire(2, a); return ok }},
		{"add flows on a worker out of range", func() bool { return d.AddFlows(5, a, 1) }},
		{"add more flows than an int32", func() bool { return d.AddFlows(0, a, 1<<40) }},
		{"remove more flows than an int32", func() bool { return d.AddFlows(0, a, -1<<40) }},
		{"release flows of an unknown address", func() bool { return d.AddFlows(0, 0x0A0000FF, -1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.False(t, tt.call())
		})
	}
	d.Release(0, 0x0A0000FF)
	d.Release(9, a)
	assert.Zero(t, d.Stats().Assigned, "bad calls assign nothing")
}

func TestDefaultSNATReclaim(t *testing.T) {
	const a, b = 0x0A000001, 0x0A000002
	t0 := time.Unix(1_700_000_000, 0)
	const idle = 30 * time.Second

	t.Run("a block with flows on any worker stays", func(t *testing.T) {
		d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024})
		blk, ok := d.Acquire(0, a)
		require.True(t, ok)
		_, ok = d.Acquire(1, a)
		require.True(t, ok)
		d.Release(0, a)
		assert.Equal(t, 1, d.Flows(a))
		for i := range 5 {
			assert.Zero(t, d.Reclaim(t0.Add(time.Duration(i)*time.Hour), idle))
		}
		got, ok := d.Lookup(a)
		require.True(t, ok)
		assert.Equal(t, blk, got)
	})

	t.Run("idle block is freed on the pass after it drains", func(t *testing.T) {
		d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024})
		blk, ok := d.Acquire(1, a)
		require.True(t, ok)
		assert.True(t, d.AddFlows(0, a, 3))
		assert.Equal(t, 4, d.Flows(a))
		d.Release(1, a)
		assert.True(t, d.AddFlows(0, a, -3))
		assert.Zero(t, d.Reclaim(t0, idle), "first seen idle")
		assert.Zero(t, d.Reclaim(t0.Add(idle-time.Nanosecond), idle), "not idle long enough")
		assert.Zero(t, d.Reclaim(t0.Add(idle), idle), "drains, frees nothing yet")
		got, ok := d.Lookup(a)
		require.True(t, ok, "a draining block is still the member's")
		assert.Equal(t, blk, got)
		assert.Equal(t, 1, d.Reclaim(t0.Add(idle+time.Second), idle))
		_, ok = d.Lookup(a)
		assert.False(t, ok)
		assert.Equal(t, 0, d.Stats().Assigned)
		assert.Equal(t, 1, d.Stats().Addresses, "the address keeps its slot")

		other, ok := d.Assign(b)
		require.True(t, ok)
		assert.Equal(t, blk, other, "the freed block is handed out again")
		again, ok := d.Assign(a)
		require.True(t, ok)
		assert.NotEqual(t, blk, again)
		assert.Equal(t, 2, d.Stats().Addresses, "a came back to its own slot")
	})

	t.Run("a draining block taken back by a worker is not freed", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			use  func(d *DefaultSNAT) bool
		}{
			{"assign", func(d *DefaultSNAT) bool { _, ok := d.Assign(a); return ok }},
			{"acquire", func(d *DefaultSNAT) bool { _, ok := d.Acquire(0, a); return ok }},
			{"add flows", func(d *DefaultSNAT) bool { return d.AddFlows(1, a, 2) }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024})
				blk, ok := d.Assign(a)
				require.True(t, ok)
				require.Zero(t, d.Reclaim(t0, 0))
				require.Equal(t, uint64(slotDraining), slotState(d.slots[d.find(a)].Load()))
				require.True(t, tt.use(d))
				assert.Equal(t, uint64(slotActive), slotState(d.slots[d.find(a)].Load()))
				assert.Zero(t, d.Reclaim(t0.Add(time.Second), idle), "its idle time starts over")
				got, ok := d.Lookup(a)
				require.True(t, ok)
				assert.Equal(t, blk, got)
			})
		}
	})

	t.Run("a reclaimed block found by a late acquire is not used", func(t *testing.T) {
		// A worker read the slot before the block was freed and counts
		// its flow after: it must see the slot free and start again.
		d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024})
		blk, ok := d.Assign(a)
		require.True(t, ok)
		require.Zero(t, d.Reclaim(t0, 0))
		require.Equal(t, 1, d.Reclaim(t0, 0))
		_, ok = d.Assign(b) // b takes a's old block
		require.True(t, ok)
		got, ok := d.Acquire(0, a)
		require.True(t, ok)
		assert.NotEqual(t, blk, got)
		bb, _ := d.Lookup(b)
		assert.Equal(t, blk, bb)
	})
}

// TestDefaultSNATCountRace plays, step by step, a worker that found a
// member's block just before the management core drained or freed it, and
// counts its flow only afterwards.
func TestDefaultSNATCountRace(t *testing.T) {
	const a, b = 0x0A000001, 0x0A000002
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name     string
		passes   int  // Reclaim passes between the worker's read and its count
		wantKeep bool // the worker may use the block it read
	}{
		{"still active", 0, true},
		{"draining: taken back to active", 1, true},
		{"freed and given to another address", 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024})
			slot, blk, ok := d.assign(a)
			require.True(t, ok)
			for range tt.passes {
				d.Reclaim(t0, 0)
			}
			if tt.passes == 2 {
				other, ok := d.Assign(b)
				require.True(t, ok)
				require.Equal(t, d.blocks[blk], other, "b got a's old block")
			}
			counts := d.flows[0].counts
			kept := d.countOn(counts, a, slot, blk, 1)
			assert.Equal(t, tt.wantKeep, kept)
			if !kept {
				assert.Zero(t, counts[blk].Load(), "the count is taken back")
				return
			}
			assert.Equal(t, uint64(slotActive), slotState(d.slots[slot].Load()))
			assert.Zero(t, d.Reclaim(t0.Add(time.Hour), 0))
			assert.Zero(t, d.Reclaim(t0.Add(time.Hour), 0), "a counted block is never freed")
			got, ok := d.Lookup(a)
			require.True(t, ok)
			assert.Equal(t, d.blocks[blk], got)
		})
	}
}

// blockHolds tracks, for the concurrency test, which address holds each
// block according to the callers: owner<<32 | number of pinned flows.
type blockHolds []atomic.Uint64

// take records a flow of private on block b; it returns false when the
// block is pinned by another address at the same time.
func (h blockHolds) take(b int, private uint32) bool {
	for {
		old := h[b].Load()
		owner, refs := uint32(old>>32), uint32(old)
		if refs != 0 && owner != private {
			return false
		}
		if h[b].CompareAndSwap(old, uint64(private)<<32|uint64(refs+1)) {
			return true
		}
	}
}

func (h blockHolds) drop(b int) { h[b].Add(^uint64(0)) }

func TestDefaultSNATConcurrent(t *testing.T) {
	const (
		workers   = 4
		addresses = 48 // more addresses than blocks: blocks must be reclaimed and reused
		rounds    = 50000
	)
	// 4032-port blocks: 16 per address, 32 on two frontends.
	d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 4032, Workers: workers, Addresses: 64})
	index := map[Block]int{}
	for i, b := range d.blocks {
		index[b] = i
	}
	holds := make(blockHolds, len(d.blocks))
	var conflicts, acquired, freed atomic.Int64
	var stop atomic.Bool

	var mgmt sync.WaitGroup
	mgmt.Add(1)
	go func() {
		defer mgmt.Done()
		now := time.Unix(0, 0)
		for !stop.Load() {
			now = now.Add(time.Millisecond)
			freed.Add(int64(d.Reclaim(now, 0)))
			_ = d.Stats()
		}
	}()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := NewRand(uint64(w) + 1)
			type flow struct {
				private uint32
				block   int
			}
			var open []flow
			for range rounds {
				private := 0x0A000000 + uint32(r.Intn(addresses))
				switch op := r.Intn(10); {
				case op < 5 || len(open) == 0:
					blk, ok := d.Acquire(w, private)
					if !ok {
						continue
					}
					acquired.Add(1)
					bi := index[blk]
					if !holds.take(bi, private) {
						conflicts.Add(1)
						d.Release(w, private)
						continue
					}
					open = append(open, flow{private, bi})
				case op < 8:
					i := r.Intn(len(open))
					f := open[i]
					open[i] = open[len(open)-1]
					open = open[:len(open)-1]
					holds.drop(f.block)
					d.Release(w, f.private)
				case op < 9:
					_, _ = d.Assign(private)
				default:
					_, _ = d.Lookup(private)
					_ = d.Flows(private)
				}
				if len(open) > 3 { // keep few flows open so blocks go idle
					f := open[0]
					open = open[1:]
					holds.drop(f.block)
					d.Release(w, f.private)
				}
			}
			for _, f := range open {
				holds.drop(f.block)
				d.Release(w, f.private)
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	mgmt.Wait()

	assert.Zero(t, conflicts.Load(), "a block was pinned by two addresses at once")
	require.Greater(t, acquired.Load(), int64(workers*rounds/10))
	require.Positive(t, freed.Load(), "blocks were reclaimed while in use elsewhere")

	// Every held block has one holder, and the holders add up.
	holder := map[int]uint32{}
	for i := range d.slots {
		w := d.slots[i].Load()
		if st := slotState(w); w == 0 || st == slotFree {
			continue
		}
		prev, dup := holder[slotBlock(w)]
		assert.False(t, dup, "block %d held by %#x and %#x", slotBlock(w), prev, slotAddress(w))
		holder[slotBlock(w)] = slotAddress(w)
	}
	assert.Equal(t, len(holder), d.Stats().Assigned)

	// With every flow gone, two passes free every block, each exactly once.
	d.Reclaim(time.Unix(1000, 0), 0)
	d.Reclaim(time.Unix(1000, 0), 0)
	assert.Zero(t, d.Stats().Assigned)
	seen := make([]bool, len(d.blocks))
	for {
		b, ok := d.pop()
		if !ok {
			break
		}
		require.False(t, seen[b], "block %d is twice on the free stack", b)
		seen[b] = true
	}
	for b, ok := range seen {
		assert.True(t, ok, "block %d was lost", b)
	}
}

// TestDefaultSNATSameNewAddress has several workers assign the same new
// address at the same moment: they must all get the same block.
func TestDefaultSNATSameNewAddress(t *testing.T) {
	const workers = 4
	d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 64, Workers: workers})
	for round := range uint32(200) {
		private := 0x0A010000 + round
		start := make(chan struct{})
		var got [workers]Block
		var oks [workers]bool
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if w%2 == 0 {
					got[w], oks[w] = d.Assign(private)
				} else {
					got[w], oks[w] = d.Acquire(w, private)
				}
			}()
		}
		close(start)
		wg.Wait()
		for w := range workers {
			require.True(t, oks[w], "round %d worker %d", round, w)
			require.Equal(t, got[0], got[w], "round %d worker %d", round, w)
		}
	}
	st := d.Stats()
	assert.Equal(t, 200, st.Assigned, "one block per address, none leaked")
	assert.Equal(t, 200, st.Addresses)
}

func TestDefaultSNATNoAllocs(t *testing.T) {
	d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024})
	const a = 0x0A000001
	_, ok := d.Assign(a)
	require.True(t, ok)
	tests := []struct {
		name string
		fn   func()
	}{
		{"assign hit", func() { _, _ = d.Assign(a) }},
		{"lookup", func() { _, _ = d.Lookup(a) }},
		{"acquire and release", func() { _, _ = d.Acquire(1, a); d.Release(1, a) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(1000, tt.fn))
		})
	}
}

func BenchmarkDefaultSNAT(b *testing.B) {
	d := newTestDefaultSNAT(b, DefaultSNATConfig{PortsPerMember: 64, Frontends: []uint32{dsFE1, dsFE2, dsFE1 + 2, dsFE1 + 3}})
	const members = 1024
	for i := range uint32(members) {
		if _, ok := d.Assign(0x0A000000 + i); !ok {
			b.Fatal("assign failed while filling")
		}
	}
	b.Run(fmt.Sprintf("AssignHit/%d", members), func(b *testing.B) {
		b.ReportAllocs()
		i := uint32(0)
		for b.Loop() {
			_, _ = d.Assign(0x0A000000 + i&(members-1))
			i += 7
		}
	})
	b.Run(fmt.Sprintf("AcquireRelease/%d", members), func(b *testing.B) {
		b.ReportAllocs()
		i := uint32(0)
		for b.Loop() {
			p := 0x0A000000 + i&(members-1)
			_, _ = d.Acquire(0, p)
			d.Release(0, p)
			i += 7
		}
	})
	b.Run("AssignHitParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := uint32(0)
			for pb.Next() {
				_, _ = d.Assign(0x0A000000 + i&(members-1))
				i += 7
			}
		})
	})
}
