package portalloc

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// portSet is a test stand-in for the flow table: the ports in use towards
// one destination.
type portSet map[uint16]bool

func TestPick(t *testing.T) {
	block := Block{Public: 0xC6130101, First: 2048, Last: 2048 + 63}
	all := func() portSet { return allPorts(block) }
	tests := []struct {
		name   string
		block  Block
		used   portSet
		wantOK bool
		want   []uint16 // when set, the port must be one of these
	}{
		{"free block", block, portSet{}, true, nil},
		{"every port used", block, all(), false, nil},
		{"one free port at the start", block, without(all(), block.First), true, []uint16{block.First}},
		{"one free port at the end", block, without(all(), block.Last), true, []uint16{block.Last}},
		{"one free port in the middle", block, without(all(), block.First+30), true, []uint16{block.First + 30}},
		{"two free ports", block, without(all(), block.First+3, block.First+40), true, []uint16{block.First + 3, block.First + 40}},
		{"single-port block free", Block{First: 65535, Last: 65535}, portSet{}, true, []uint16{65535}},
		{"single-port block used", Block{First: 65535, Last: 65535}, portSet{65535: true}, false, nil},
		{"whole address", Block{First: FirstPort, Last: LastPort}, portSet{}, true, nil},
		{"empty block", Block{First: 2000, Last: 1999}, portSet{}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(50) {
				r := NewRand(seed)
				port, ok := Pick(tt.block, &r, func(p uint16) bool { return tt.used[p] })
				require.Equal(t, tt.wantOK, ok, "seed %d", seed)
				if !ok {
					continue
				}
				assert.True(t, tt.block.Contains(port), "port %d outside %v", port, tt.block)
				assert.False(t, tt.used[port], "port %d is used", port)
				if tt.want != nil {
					assert.Contains(t, tt.want, port)
				}
			}
		})
	}
}

// allPorts returns every port of b, all in use.
func allPorts(b Block) portSet {
	s := portSet{}
	for p := b.First; p <= b.Last; p++ {
		s[p] = true
	}
	return s
}

func without(s portSet, ports ...uint16) portSet {
	for _, p := range ports {
		delete(s, p)
	}
	return s
}

// TestPickFillsBlockRandomly takes ports one by one until the block is
// exhausted: every port is handed out exactly once, exhaustion comes exactly
// after Size ports, and the order is not sequential [S2].
func TestPickFillsBlockRandomly(t *testing.T) {
	for _, size := range []int{8, 32, 1024} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			b := Block{First: 4096, Last: uint16(4096 + size - 1)}
			r := NewRand(uint64(size))
			used := portSet{}
			var order []uint16
			for range size {
				p, ok := Pick(b, &r, func(p uint16) bool { return used[p] })
				require.True(t, ok, "after %d ports", len(order))
				require.False(t, used[p])
				used[p] = true
				order = append(order, p)
			}
			_, ok := Pick(b, &r, func(p uint16) bool { return used[p] })
			assert.False(t, ok, "a full block must be exhausted")
			ascending := 0
			for i := 1; i < len(order); i++ {
				if order[i] == order[i-1]+1 {
					ascending++
				}
			}
			assert.Less(t, ascending, size/2, "ports were handed out mostly in sequence: %v", order)
		})
	}
}

// TestPickUniformWhenFree checks the random probes: on a free block every
// port comes up about equally often.
func TestPickUniformWhenFree(t *testing.T) {
	b := Block{First: 1024, Last: 1024 + 15}
	r := NewRand(3)
	counts := map[uint16]int{}
	const draws = 16 * 1000
	for range draws {
		p, ok := Pick(b, &r, func(uint16) bool { return false })
		require.True(t, ok)
		counts[p]++
	}
	require.Len(t, counts, 16)
	for p, c := range counts {
		assert.InDelta(t, 1000, c, 150, "port %d", p)
	}
}

// usedBitmap returns a port-used bitmap of block with every port used but
// the one at offset free (none when free is negative).
func usedBitmap(block Block, free int) []bool {
	used := make([]bool, block.Size())
	for i := range used {
		used[i] = true
	}
	if free >= 0 {
		used[free] = false
	}
	return used
}

func TestPickNoAllocs(t *testing.T) {
	block := Block{First: 1024, Last: 1024 + 1023}
	tests := []struct {
		name string
		used []bool
	}{
		{"free block", make([]bool, block.Size())},
		{"nearly full block", usedBitmap(block, 700)},
		{"full block", usedBitmap(block, -1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRand(1)
			first := block.First
			probes := 0
			allocs := testing.AllocsPerRun(200, func() {
				_, _ = Pick(block, &r, func(p uint16) bool {
					probes++
					return tt.used[p-first]
				})
			})
			assert.Zero(t, allocs)
			assert.Positive(t, probes)
		})
	}
}

func BenchmarkPick(b *testing.B) {
	block := Block{First: 1024, Last: 1024 + 1023}
	benches := []struct {
		name string
		used []bool
	}{
		{"free", make([]bool, block.Size())},
		{"half", func() []bool {
			u := make([]bool, block.Size())
			for i := 0; i < len(u); i += 2 {
				u[i] = true
			}
			return u
		}()},
		{"one_free", usedBitmap(block, 700)},
		{"full", usedBitmap(block, -1)},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			r := NewRand(1)
			first := block.First
			used := bb.used
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Pick(block, &r, func(p uint16) bool { return used[p-first] })
			}
		})
	}
}

func TestPickFrom(t *testing.T) {
	block := Block{Public: 0xC6130101, First: 2048, Last: 2048 + 63}
	all := func() portSet { return allPorts(block) }
	tests := []struct {
		name   string
		hint   uint16
		used   portSet
		wantOK bool
		want   []uint16 // when set, the port must be one of these
	}{
		{"free hint is taken", block.First + 7, portSet{}, true, []uint16{block.First + 7}},
		{"used hint falls back to a free port", block.First + 7, without(all(), block.First+9), true, []uint16{block.First + 9}},
		{"hint outside the block is ignored", block.Last + 1, without(all(), block.First), true, []uint16{block.First}},
		{"hint below the block is ignored", block.First - 1, portSet{}, true, nil},
		{"every port used", block.First, all(), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(20) {
				r := NewRand(seed)
				port, ok := PickFrom(block, tt.hint, &r, func(p uint16) bool { return tt.used[p] })
				require.Equal(t, tt.wantOK, ok, "seed %d", seed)
				if !ok {
					continue
				}
				assert.True(t, block.Contains(port), "port %d outside %v", port, block)
				assert.False(t, tt.used[port], "port %d is used", port)
				if tt.want != nil {
					assert.Contains(t, tt.want, port)
				}
			}
		})
	}
}
