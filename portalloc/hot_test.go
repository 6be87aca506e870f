package portalloc

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func hotKey(i int) Key {
	return Key{Private: 0x0a000001 + uint32(i%7), Remote: 0xc6336401 + uint32(i), RemotePort: 443, Proto: 6}
}

func TestHotKeepsHighestRatios(t *testing.T) {
	var h Hot
	u := NewUsage(1 << 12)
	// 40 pairs, pair i takes i+1 ports of a 100-port block.
	for i := range 40 {
		for range i + 1 {
			n, ok := u.Inc(hotKey(i))
			require.True(t, ok)
			h.Created(hotKey(i), n, 100, 0)
		}
	}
	require.Equal(t, HotK, h.Len())
	got := map[Key]uint32{}
	for _, e := range h.Entries() {
		got[e.Key] = e.InUse
		assert.Equal(t, uint32(100), e.Size)
	}
	for i := 40 - HotK; i < 40; i++ {
		assert.Equal(t, uint32(i+1), got[hotKey(i)], "pair %d", i)
	}
}

func TestHotRatioUsesBlockSize(t *testing.T) {
	var h Hot
	// Fill the set with pairs at 10/1000.
	for i := range HotK {
		h.Created(hotKey(i), 10, 1000, 0)
	}
	// 5 of 20 ports (25%) beats 10 of 1000 (1%) although 5 < 10.
	k := hotKey(100)
	h.Created(k, 5, 20, 1)
	found := false
	for _, e := range h.Entries() {
		if e.Key == k {
			found = true
			assert.Equal(t, uint16(1), e.Scope)
		}
	}
	assert.True(t, found)
	// 1 of 1000 does not enter.
	h.Created(hotKey(200), 1, 1000, 0)
	for _, e := range h.Entries() {
		assert.NotEqual(t, hotKey(200), e.Key)
	}
}

func TestHotCountsAndRemoval(t *testing.T) {
	var h Hot
	k := hotKey(1)
	for n := 1; n <= 5; n++ {
		h.Created(k, n, 64, 0)
	}
	h.Released(k, 4)
	h.Released(k, 3)
	require.Equal(t, 1, h.Len())
	e := h.Entries()[0]
	assert.Equal(t, HotEntry{Key: k, InUse: 3, Size: 64, Created: 5, Released: 2, Serial: 1}, e)
	v := h.Version()
	h.Released(hotKey(2), 0) // not in the set: nothing changes
	assert.Equal(t, v, h.Version())
	h.Released(k, 2)
	h.Released(k, 1)
	h.Released(k, 0)
	assert.Equal(t, 0, h.Len())
	h.Created(k, 1, 64, 0)
	assert.Equal(t, uint32(2), h.Entries()[0].Serial, "a new entry gets a new serial")
}

// TestHotModel checks the set against a brute-force model under random
// creations and releases: every entry's count is exact, and a pair that
// just created a flow is in the set whenever its ratio is among the HotK
// highest.
func TestHotModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Hot
	u := NewUsage(1 << 12)
	sizes := map[Key]int{}
	for step := range 5000 {
		k := hotKey(r.IntN(60))
		size := 50 + int(k.Remote%4)*50
		if r.IntN(100) < 55 && u.Count(k) < size {
			n, ok := u.Inc(k)
			require.True(t, ok)
			sizes[k] = size
			h.Created(k, n, size, 0)
			// Rank of k among all pairs with ports in use.
			type pr struct {
				k Key
				r float64
			}
			var all []pr
			u.Range(func(k Key, n int) bool {
				all = append(all, pr{k, float64(n) / float64(sizes[k])})
				return true
			})
			sort.Slice(all, func(i, j int) bool { return all[i].r > all[j].r })
			mine := float64(n) / float64(size)
			if all[min(HotK, len(all))-1].r < mine {
				require.NotEqual(t, -1, h.find(k), "step %d: pair among the top %d is not in the set", step, HotK)
			}
		} else if u.Count(k) > 0 {
			h.Released(k, u.Dec(k))
		}
		var filter uint64
		for _, e := range h.Entries() {
			require.Equal(t, u.Count(e.Key), int(e.InUse), "step %d", step)
			require.NotZero(t, e.InUse)
			filter |= hotBit(e.Key)
		}
		require.Equal(t, filter, h.filter, "step %d: the filter is the entries' bits", step)
	}
}

// BenchmarkHotReleaseCold is the common release: a pair not in the set.
func BenchmarkHotReleaseCold(b *testing.B) {
	var h Hot
	for i := range HotK {
		h.Created(hotKey(i), 90, 100, 0)
	}
	cold := make([]Key, 256)
	for i := range cold {
		cold[i] = hotKey(1000 + i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Released(cold[i&255], 1)
	}
}

func TestHotNoAllocs(t *testing.T) {
	var h Hot
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		k := hotKey(i % 40)
		h.Created(k, i%50+1, 100, 0)
		h.Released(k, i%50)
		i++
	})
	assert.Zero(t, allocs)
}
