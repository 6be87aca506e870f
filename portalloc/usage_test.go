package portalloc

import (
	"encoding/binary"
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUsageLayout(t *testing.T) {
	assert.Equal(t, uintptr(16), unsafe.Sizeof(usageEntry{}), "entry size")
	tests := []struct {
		capacity, wantCap, wantSlots int
	}{
		{-3, 1, 2},
		{0, 1, 2},
		{1, 1, 2},
		{3, 3, 4},
		{4, 4, 6},
		{5, 5, 7},
		{1000, 1000, 1334},
		{1024, 1024, 1366},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.capacity), func(t *testing.T) {
			u := NewUsage(tt.capacity)
			assert.Equal(t, tt.wantCap, u.Cap())
			assert.Len(t, u.slots, tt.wantSlots)
			assert.LessOrEqual(t, 4*u.Cap(), 3*len(u.slots), "load factor above 3/4")
			assert.Greater(t, len(u.slots), u.Cap(), "a full table keeps an empty slot, so probes end")
		})
	}
}

func TestUsageBasics(t *testing.T) {
	a := Key{Private: 0x0A000104, Remote: 0xC6120001, RemotePort: 443, Proto: 6}
	b := a
	b.Proto = 17 // same endpoint, other protocol: another destination
	c := a
	c.RemotePort = 80
	u := NewUsage(2)

	n, ok := u.Inc(a)
	require.True(t, ok)
	assert.Equal(t, 1, n)
	n, ok = u.Inc(a)
	require.True(t, ok)
	assert.Equal(t, 2, n)
	n, ok = u.Inc(b)
	require.True(t, ok)
	assert.Equal(t, 1, n)
	assert.Equal(t, 2, u.Len())

	t.Run("full table refuses a new key only", func(t *testing.T) {
		_, ok := u.Inc(c)
		assert.False(t, ok)
		assert.Equal(t, 0, u.Count(c))
		n, ok := u.Inc(a)
		assert.True(t, ok)
		assert.Equal(t, 3, n)
		assert.Equal(t, 2, u.Dec(a))
	})
	t.Run("counts per key", func(t *testing.T) {
		assert.Equal(t, 2, u.Count(a))
		assert.Equal(t, 1, u.Count(b))
		assert.Equal(t, 0, u.Count(c))
	})
	t.Run("dec to zero removes", func(t *testing.T) {
		assert.Equal(t, 0, u.Dec(b))
		assert.Equal(t, 0, u.Count(b))
		assert.Equal(t, 1, u.Len())
		assert.Equal(t, 0, u.Dec(b), "dec of a missing key")
		assert.Equal(t, 1, u.Len())
		_, ok := u.Inc(c)
		assert.True(t, ok, "room again after a removal")
	})
	t.Run("range", func(t *testing.T) {
		got := map[Key]int{}
		u.Range(func(k Key, n int) bool { got[k] = n; return true })
		assert.Equal(t, map[Key]int{a: 2, c: 1}, got)
		calls := 0
		u.Range(func(Key, int) bool { calls++; return false })
		assert.Equal(t, 1, calls, "range stops when fn returns false")
	})
}

// checkUsage verifies u against the model and the probing invariant: every
// entry is reachable from its home slot without crossing an empty slot. It
// runs after every operation, so it checks by hand and reports only
// failures.
func checkUsage(t *testing.T, u *Usage, model map[Key]int) {
	t.Helper()
	if u.Len() != len(model) {
		t.Fatalf("Len() = %d, model has %d keys", u.Len(), len(model))
	}
	for k, n := range model {
		if got := u.Count(k); got != n {
			t.Fatalf("Count(%+v) = %d, want %d", k, got, n)
		}
	}
	seen := 0
	for i, e := range u.slots {
		if e.n == 0 {
			continue
		}
		seen++
		for j := u.home(e.key); j != uint64(i); j = u.next(j) {
			if u.slots[j].n == 0 {
				t.Fatalf("hole at %d before entry %+v at %d", j, e.key, i)
			}
		}
	}
	if seen != len(model) {
		t.Fatalf("table holds %d entries, model %d", seen, len(model))
	}
}

// applyUsageOps runs a byte-coded sequence of operations on u and a map
// model: each 3-byte op picks Inc or Dec and one of a few keys, so keys
// collide and runs form in the small table.
func applyUsageOps(t *testing.T, u *Usage, ops []byte) {
	model := map[Key]int{}
	for len(ops) >= 3 {
		op, k := ops[0], Key{Private: 0x0A000000 | uint32(ops[1]&7), Remote: 0xC6120000 | uint32(ops[2]&15), RemotePort: uint16(ops[2] >> 4), Proto: 6}
		ops = ops[3:]
		if op&1 == 0 {
			n, ok := u.Inc(k)
			if model[k] == 0 && len(model) >= u.Cap() {
				if ok {
					t.Fatalf("Inc(%+v) of a new key succeeded in a full table", k)
				}
				continue
			}
			model[k]++
			if !ok || n != model[k] {
				t.Fatalf("Inc(%+v) = %d, %v; want %d, true", k, n, ok, model[k])
			}
		} else {
			n := u.Dec(k)
			if model[k] > 0 {
				model[k]--
			}
			if model[k] == 0 {
				delete(model, k)
			}
			if n != model[k] {
				t.Fatalf("Dec(%+v) = %d, want %d", k, n, model[k])
			}
		}
		checkUsage(t, u, model)
	}
}

func TestUsageAgainstModel(t *testing.T) {
	for _, capacity := range []int{1, 4, 16, 100} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			for seed := range uint64(20) {
				r := NewRand(seed)
				ops := make([]byte, 3*2000)
				for i := range ops {
					ops[i] = byte(r.Uint32())
				}
				u := NewUsage(capacity)
				u.seed = seed // make runs reproducible
				applyUsageOps(t, u, ops)
			}
		})
	}
}

// TestUsageDeleteShiftsBack fills a run of colliding keys and removes them
// in every order; lookups must never stop at a hole.
func TestUsageDeleteShiftsBack(t *testing.T) {
	u := NewUsage(64)
	u.seed = 1
	// Find keys sharing one home slot, and keys of the next home slot, so
	// the runs overlap.
	var same, next []Key
	home := ^uint64(0)
	for i := uint32(0); len(same) < 5 || len(next) < 3; i++ {
		k := Key{Private: 0x0A000000 + i, Remote: 0xC6120001, RemotePort: 53, Proto: 17}
		h := u.home(k)
		if home == ^uint64(0) {
			home = h
		}
		switch {
		case h == home && len(same) < 5:
			same = append(same, k)
		case h == u.next(home) && len(next) < 3:
			next = append(next, k)
		}
	}
	keys := append(append([]Key{}, same[:2]...), append(next, same[2:]...)...)
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5, 6, 7}, {7, 6, 5, 4, 3, 2, 1, 0}, {0, 2, 4, 6, 1, 3, 5, 7}, {3, 0, 7, 1, 6, 2, 5, 4}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			model := map[Key]int{}
			for _, k := range keys {
				_, ok := u.Inc(k)
				require.True(t, ok)
				model[k] = 1
			}
			checkUsage(t, u, model)
			for _, i := range order {
				assert.Equal(t, 0, u.Dec(keys[i]))
				delete(model, keys[i])
				checkUsage(t, u, model)
			}
		})
	}
}

func FuzzUsage(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 1, 2, 1, 1, 2})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		u := NewUsage(6)
		u.seed = uint64(len(ops))
		applyUsageOps(t, u, ops)
	})
}

func TestUsageNoAllocs(t *testing.T) {
	u := NewUsage(1024)
	k := Key{Private: 0x0A000001, Remote: 0xC6120001, RemotePort: 443, Proto: 6}
	allocs := testing.AllocsPerRun(1000, func() {
		_, _ = u.Inc(k)
		_ = u.Count(k)
		_ = u.Dec(k)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, 0, u.Len())
}

// benchKeys returns n distinct keys spread like real traffic: a few
// hundred members towards many destinations.
func benchKeys(n int) []Key {
	keys := make([]Key, n)
	r := NewRand(5)
	var b [8]byte
	for i := range keys {
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		keys[i] = Key{
			Private:    0x0A000000 | uint32(i%512),
			Remote:     0xC6000000 | uint32(i/512)<<8 | uint32(b[0]),
			RemotePort: 443,
			Proto:      6,
		}
	}
	return keys
}

func BenchmarkUsage(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 20} {
		keys := benchKeys(n)
		u := NewUsage(n)
		for _, k := range keys {
			if _, ok := u.Inc(k); !ok {
				b.Fatal("table full while filling")
			}
		}
		// Visit keys in a scattered order so the table is not walked
		// sequentially.
		order := make([]int32, n)
		r := NewRand(9)
		for i := range order {
			order[i] = int32(r.Intn(n))
		}
		b.Run(fmt.Sprintf("Count/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = u.Count(keys[order[i&(n-1)]])
				i++
			}
		})
		b.Run(fmt.Sprintf("IncDec/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := keys[order[i&(n-1)]]
				_, _ = u.Inc(k)
				_ = u.Dec(k)
				i++
			}
		})
		b.Run(fmt.Sprintf("InsertRemove/%d", n), func(b *testing.B) {
			// Remove a key (count 1: backward-shift deletion) and insert it
			// again, at full capacity.
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := keys[order[i&(n-1)]]
				_ = u.Dec(k)
				_, _ = u.Inc(k)
				i++
			}
		})
	}
}
