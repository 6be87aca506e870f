package nat

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testTimeouts are short, distinct timeouts so that each state's expiry is
// told apart.
var testTimeouts = Timeouts{
	TCPEstablished: 240_000,
	TCPTransitory:  30_000,
	TCPClosing:     10_000,
	UDP:            120_000,
	ICMP:           60_000,
}

// Protocol numbers used by the tests.
const (
	testTCP  = 6
	testUDP  = 17
	testICMP = 1
)

// stateOfProto is the state a new flow of proto starts in.
func stateOfProto(proto uint8) uint8 {
	switch proto {
	case testTCP:
		return StateTCPSynSent
	case testUDP:
		return StateUDP
	}
	return StateICMP
}

// randomFlow returns a flow with random endpoints in the test address
// ranges of SPEC §8.
func randomFlow(r *rand.Rand) Flow {
	protos := [...]uint8{testTCP, testUDP, testICMP}
	f := Flow{
		Priv:       0x0a000000 | r.Uint32()&0xffffff,
		Pub:        0xc6130000 | r.Uint32()&0xffff,
		Remote:     0xc6120000 | r.Uint32()&0xffff,
		PrivPort:   uint16(r.Uint32()),
		PubPort:    uint16(1024 + r.IntN(64512)),
		RemotePort: uint16(r.Uint32()),
		Proto:      protos[r.IntN(len(protos))],
	}
	if f.Proto == testICMP {
		f.RemotePort = 0
	}
	f.State = stateOfProto(f.Proto)
	return f
}

func outKeyOf(f *Flow) OutKey {
	return OutKey{Priv: f.Priv, Remote: f.Remote, PrivPort: f.PrivPort, RemotePort: f.RemotePort, Proto: f.Proto}
}

func inKeyOf(f *Flow) InKey {
	return InKey{Pub: f.Pub, Remote: f.Remote, PubPort: f.PubPort, RemotePort: f.RemotePort, Proto: f.Proto}
}

func TestFlowRecordSize(t *testing.T) {
	assert.Equal(t, uintptr(64), unsafe.Sizeof(Flow{}), "Flow record: one cache line")
	assert.Equal(t, uintptr(8), unsafe.Sizeof(indexSlot{}), "index slot")
}

func TestInsertLookupRemove(t *testing.T) {
	tests := []struct {
		name string
		f    Flow
	}{
		{"tcp", Flow{Priv: 0x0a000104, Pub: 0xc613010a, Remote: 0xc6120001, PrivPort: 40000, PubPort: 2048, RemotePort: 443, Proto: testTCP, State: StateTCPSynSent, Gen: 3, Scope: 7}},
		{"udp", Flow{Priv: 0x0a000104, Pub: 0xc613010a, Remote: 0xc6120001, PrivPort: 40000, PubPort: 2049, RemotePort: 53, Proto: testUDP, State: StateUDP}},
		{"icmp echo", Flow{Priv: 0x0a000105, Pub: 0xc613010a, Remote: 0xc6120002, PrivPort: 77, PubPort: 1500, Proto: testICMP, State: StateICMP}},
		{"zero addresses", Flow{Proto: testUDP, State: StateUDP}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := NewFlowTable(16, testTimeouts, 1000)
			f := tc.f
			i, ok := ft.Insert(&f, 5000)
			require.True(t, ok)
			require.NotZero(t, i)
			outK, ik := outKeyOf(&f), inKeyOf(&f)
			assert.Equal(t, i, ft.LookupOut(&outK))
			assert.Equal(t, i, ft.LookupIn(&ik))
			assert.Equal(t, 1, ft.Len())

			got := ft.Flow(i)
			require.NotNil(t, got)
			want := tc.f
			want.LastSeen = 5000
			assert.Equal(t, want.Priv, got.Priv)
			assert.Equal(t, want.Pub, got.Pub)
			assert.Equal(t, want.Remote, got.Remote)
			assert.Equal(t, want.PrivPort, got.PrivPort)
			assert.Equal(t, want.PubPort, got.PubPort)
			assert.Equal(t, want.RemotePort, got.RemotePort)
			assert.Equal(t, want.Proto, got.Proto)
			assert.Equal(t, want.State, got.State)
			assert.Equal(t, want.Gen, got.Gen)
			assert.Equal(t, want.Scope, got.Scope)
			assert.Equal(t, Tick(5000), got.LastSeen)

			// Near misses: every key field matters.
			for _, mut := range []func(k *OutKey){
				func(k *OutKey) { k.Priv++ }, func(k *OutKey) { k.Remote++ },
				func(k *OutKey) { k.PrivPort++ }, func(k *OutKey) { k.RemotePort++ },
				func(k *OutKey) { k.Proto++ },
			} {
				k := outKeyOf(&f)
				mut(&k)
				assert.Zero(t, ft.LookupOut(&k))
				// Even on a tag match the whole key is compared.
				assert.Zero(t, ft.findOut(&k, ft.out.tag(f.Priv, f.Remote, f.PrivPort, f.RemotePort, f.Proto)))
			}
			for _, mut := range []func(k *InKey){
				func(k *InKey) { k.Pub++ }, func(k *InKey) { k.Remote++ },
				func(k *InKey) { k.PubPort++ }, func(k *InKey) { k.RemotePort++ },
				func(k *InKey) { k.Proto++ },
			} {
				k := inKeyOf(&f)
				mut(&k)
				assert.Zero(t, ft.LookupIn(&k))
				assert.Zero(t, ft.findIn(&k, ft.in.tag(f.Pub, f.Remote, f.PubPort, f.RemotePort, f.Proto)))
			}

			ft.Remove(i)
			assert.Zero(t, ft.LookupOut(&outK))
			assert.Zero(t, ft.LookupIn(&ik))
			assert.Zero(t, ft.Len())
			ft.Remove(i) // a second Remove is ignored
			assert.Zero(t, ft.Len())

			j, ok := ft.Insert(&f, 6000)
			require.True(t, ok)
			assert.Equal(t, j, ft.LookupOut(&outK), "re-inserted after removal")
		})
	}
}

func TestInsertRejects(t *testing.T) {
	base := Flow{Priv: 0x0a000001, Pub: 0xc6130001, Remote: 0xc6120001, PrivPort: 1000, PubPort: 2000, RemotePort: 80, Proto: testTCP, State: StateTCPSynSent}
	tests := []struct {
		name   string
		second Flow
		ok     bool
	}{
		{"same private 5-tuple", func() Flow { f := base; f.PubPort++; return f }(), false},
		{"same public 5-tuple", func() Flow { f := base; f.PrivPort++; return f }(), false},
		{"identical", base, false},
		{"free state", func() Flow { f := base; f.PrivPort++; f.PubPort++; f.State = StateFree; return f }(), false},
		{"other destination, same public port", func() Flow { f := base; f.PrivPort++; f.Remote++; return f }(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := NewFlowTable(8, testTimeouts, 0)
			first := base
			_, ok := ft.Insert(&first, 0)
			require.True(t, ok)
			_, ok = ft.Insert(&tc.second, 0)
			assert.Equal(t, tc.ok, ok)
			if tc.ok {
				assert.Equal(t, 2, ft.Len())
			} else {
				assert.Equal(t, 1, ft.Len())
			}
		})
	}
}

func TestTableFull(t *testing.T) {
	for _, capacity := range []int{1, 5, 100} {
		t.Run("", func(t *testing.T) {
			ft := NewFlowTable(capacity, testTimeouts, 0)
			require.Equal(t, capacity, ft.Capacity())
			r := rand.New(rand.NewPCG(1, uint64(capacity)))
			var idx []uint32
			for len(idx) < capacity {
				f := randomFlow(r)
				i, ok := ft.Insert(&f, 0)
				require.True(t, ok)
				idx = append(idx, i)
			}
			f := randomFlow(r)
			_, ok := ft.Insert(&f, 0)
			assert.False(t, ok, "insert into a full table")
			assert.Equal(t, capacity, ft.Len())

			ft.Remove(idx[len(idx)/2])
			i, ok := ft.Insert(&f, 0)
			assert.True(t, ok, "insert after a removal")
			assert.Equal(t, idx[len(idx)/2], i, "the freed record is reused")
		})
	}
}

func TestNewFlowTableClamps(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{-1, 1}, {0, 1}, {3, 3}} {
		assert.Equal(t, tc.want, NewFlowTable(tc.in, testTimeouts, 0).Capacity())
	}
}

func TestBadIndexesAreIgnored(t *testing.T) {
	ft := NewFlowTable(4, testTimeouts, 0)
	f := Flow{Proto: testUDP, State: StateUDP, PrivPort: 1}
	i, ok := ft.Insert(&f, 0)
	require.True(t, ok)
	for _, bad := range []uint32{0, 3, 5, 1 << 31, ^uint32(0)} {
		assert.NotPanics(t, func() {
			if bad == 0 || bad >= 5 {
				assert.Nil(t, ft.Flow(bad))
			}
			ft.Touch(bad, 1)
			ft.SetState(bad, StateTCPClosing, FlagRST, 1)
			ft.Remove(bad)
		})
	}
	assert.Equal(t, 1, ft.Len())
	assert.Equal(t, uint8(StateUDP), ft.Flow(i).State)
	ft.SetState(i, StateFree, 0, 1)
	assert.Equal(t, uint8(StateUDP), ft.Flow(i).State, "SetState to StateFree is ignored")
}

// TestIndexChurn runs random inserts and removals against a Go map oracle,
// on tables small enough that probe runs wrap around the end of the index,
// which exercises backward-shift deletion in every position.
func TestIndexChurn(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		keySpace int // distinct private ports: small spaces make duplicates
		ops      int
	}{
		{"tiny", 7, 12, 20000},
		{"small", 100, 150, 50000},
		{"medium", 5000, 8000, 100000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(42, uint64(tc.capacity)))
			ft := NewFlowTable(tc.capacity, testTimeouts, 0)
			oracle := map[OutKey]uint32{}
			keyOf := func(n int) Flow {
				// Public port derived from the private one keeps both
				// indexes one-to-one.
				return Flow{Priv: 0x0a000001, Pub: 0xc6130001, Remote: 0xc6120001,
					PrivPort: uint16(n), PubPort: uint16(n), RemotePort: 80, Proto: testUDP, State: StateUDP}
			}
			check := func(f *Flow) {
				ok, ik := outKeyOf(f), inKeyOf(f)
				want := oracle[ok]
				require.Equal(t, want, ft.LookupOut(&ok), "out lookup of port %d", f.PrivPort)
				require.Equal(t, want, ft.LookupIn(&ik), "in lookup of port %d", f.PrivPort)
			}
			for op := range tc.ops {
				f := keyOf(r.IntN(tc.keySpace))
				k := outKeyOf(&f)
				if i, present := oracle[k]; present && r.IntN(2) == 0 {
					ft.Remove(i)
					delete(oracle, k)
				} else {
					i, ok := ft.Insert(&f, 0)
					wantOK := !present && len(oracle) < tc.capacity
					require.Equal(t, wantOK, ok, "insert of port %d", f.PrivPort)
					if ok {
						oracle[k] = i
					}
				}
				require.Equal(t, len(oracle), ft.Len())
				check(&f)
				if op%1000 == 0 {
					for n := range tc.keySpace {
						f := keyOf(n)
						check(&f)
					}
				}
			}
			for n := range tc.keySpace {
				f := keyOf(n)
				check(&f)
			}
		})
	}
}

// TestIndexSpread checks that structured keys (consecutive hosts and ports)
// spread over the index: the mean probe distance of linear probing at half
// load is about 0.5 slots for well-mixed hashes.
func TestIndexSpread(t *testing.T) {
	tests := []struct {
		name string
		key  func(n int) Flow
	}{
		{"consecutive private ports", func(n int) Flow {
			return Flow{Priv: 0x0a000001, Pub: 0xc6130001, Remote: 0xc6120001, PrivPort: uint16(n), PubPort: uint16(n), RemotePort: 443, Proto: testTCP}
		}},
		{"consecutive hosts", func(n int) Flow {
			return Flow{Priv: 0x0a000000 + uint32(n), Pub: 0xc6130001, Remote: 0xc6120001, PrivPort: 5000, PubPort: uint16(n), RemotePort: 443, Proto: testTCP}
		}},
		{"consecutive remotes", func(n int) Flow {
			return Flow{Priv: 0x0a000001, Pub: 0xc6130000 + uint32(n)>>16, Remote: 0xc6120000 + uint32(n), PrivPort: 5000, PubPort: uint16(n), RemotePort: 443, Proto: testTCP}
		}},
	}
	const n = 1 << 15
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := NewFlowTable(n, testTimeouts, 0)
			for j := range n {
				f := tc.key(j)
				f.State = StateTCPEstablished
				_, ok := ft.Insert(&f, 0)
				require.True(t, ok)
			}
			for _, x := range []*flowIndex{&ft.out, &ft.in} {
				total, worst := 0, uint32(0)
				for p, s := range x.slots {
					if s.tag != 0 {
						d := x.dist(x.home(s.tag), uint32(p))
						total += int(d)
						worst = max(worst, d)
					}
				}
				mean := float64(total) / n
				assert.Less(t, mean, 1.0, "mean probe distance")
				assert.Less(t, worst, uint32(64), "longest probe distance")
			}
		})
	}
}

func TestRange(t *testing.T) {
	ft := NewFlowTable(64, testTimeouts, 0)
	r := rand.New(rand.NewPCG(7, 7))
	live := map[uint32]Flow{}
	for range 50 {
		f := randomFlow(r)
		i, ok := ft.Insert(&f, 0)
		require.True(t, ok)
		live[i] = f
	}
	for i := range live {
		if i%3 == 0 {
			ft.Remove(i)
			delete(live, i)
		}
	}

	t.Run("visits every live flow once", func(t *testing.T) {
		seen := map[uint32]int{}
		ft.Range(func(i uint32, f *Flow) bool {
			seen[i]++
			assert.Equal(t, live[i].Priv, f.Priv)
			return true
		})
		assert.Len(t, seen, len(live))
		for i, n := range seen {
			assert.Equal(t, 1, n, "flow %d", i)
		}
	})
	t.Run("stops when fn returns false", func(t *testing.T) {
		n := 0
		ft.Range(func(uint32, *Flow) bool { n++; return n < 5 })
		assert.Equal(t, 5, n)
	})
	t.Run("fn may remove its flow", func(t *testing.T) {
		ft.Range(func(i uint32, f *Flow) bool {
			if f.Proto == testUDP {
				ft.Remove(i)
			}
			return true
		})
		ft.Range(func(i uint32, f *Flow) bool {
			assert.NotEqual(t, uint8(testUDP), f.Proto)
			return true
		})
		for i, f := range live {
			k := outKeyOf(&f)
			if f.Proto == testUDP {
				assert.Zero(t, ft.LookupOut(&k))
			} else {
				assert.Equal(t, i, ft.LookupOut(&k))
			}
		}
	})
}

func TestLookupBatch(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 33, 100} {
		t.Run("", func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, uint64(n)))
			ft := NewFlowTable(256, testTimeouts, 0)
			outKeys := make([]OutKey, n)
			inKeys := make([]InKey, n)
			want := make([]uint32, n)
			for j := range n {
				f := randomFlow(r)
				if j%3 != 2 { // every third key is a miss
					i, ok := ft.Insert(&f, 0)
					require.True(t, ok)
					want[j] = i
				}
				outKeys[j], inKeys[j] = outKeyOf(&f), inKeyOf(&f)
			}
			got := make([]uint32, n+1)
			got[n] = 12345
			ft.LookupOutBatch(outKeys, got)
			assert.Equal(t, want, got[:n])
			assert.Equal(t, uint32(12345), got[n], "writes only len(keys) results")
			clear(got)
			ft.LookupInBatch(inKeys, got)
			assert.Equal(t, want, got[:n])
		})
	}
}

func TestMemoryPerFlow(t *testing.T) {
	const capacity = 1_000_000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ft := NewFlowTable(capacity, testTimeouts, 0)
	runtime.ReadMemStats(&after)
	perFlow := float64(ft.MemoryBytes()) / float64(ft.Capacity())
	t.Logf("%.1f bytes/flow at %d flows", perFlow, capacity)
	assert.LessOrEqual(t, perFlow, 128.0)
	// MemoryBytes accounts for what NewFlowTable allocated.
	allocated := float64(after.TotalAlloc - before.TotalAlloc)
	assert.InEpsilon(t, allocated, float64(ft.MemoryBytes()), 0.02)
}

func TestNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	ft := NewFlowTable(1024, testTimeouts, 0)
	var outKeys [64]OutKey
	var inKeys [64]InKey
	var idx [64]uint32
	for j := range outKeys {
		f := randomFlow(r)
		i, ok := ft.Insert(&f, 0)
		require.True(t, ok)
		outKeys[j], inKeys[j], idx[j] = outKeyOf(&f), inKeyOf(&f), i
	}
	var res [64]uint32
	extra := randomFlow(r)
	now := Tick(0)
	expireFn := func(uint32, *Flow, ExpireReason) {}
	tests := []struct {
		name string
		fn   func()
	}{
		{"LookupOut", func() { _ = ft.LookupOut(&outKeys[3]) }},
		{"LookupIn", func() { _ = ft.LookupIn(&inKeys[3]) }},
		{"LookupOutBatch", func() { ft.LookupOutBatch(outKeys[:], res[:]) }},
		{"LookupInBatch", func() { ft.LookupInBatch(inKeys[:], res[:]) }},
		{"Flow", func() { _ = ft.Flow(idx[1]) }},
		{"Touch", func() { now++; ft.Touch(idx[2], now) }},
		{"SetState", func() {
			ft.SetState(idx[4], StateTCPClosing, FlagRST, now)
			ft.SetState(idx[4], StateTCPSynSent, 0, now)
		}},
		{"Insert+Remove", func() {
			i, _ := ft.Insert(&extra, now)
			ft.Remove(i)
		}},
		{"Expire", func() {
			now += 50_000
			ft.Expire(now, 16, expireFn)
			i, _ := ft.Insert(&extra, now)
			_ = i
		}},
		{"TCPTransition", func() { _, _ = TCPTransition(StateTCPEstablished, 0, TCPFlagFIN|TCPFlagACK, true) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(200, tc.fn))
		})
	}
}

// TestFlowRecordLayout checks that a record is one cache line and that a
// large table's records start on a line boundary, so a lookup touches one
// line of the record array.
func TestFlowRecordLayout(t *testing.T) {
	require.Equal(t, uintptr(64), unsafe.Sizeof(Flow{}))
	ft := NewFlowTable(1<<16, testTimeouts, 0)
	assert.Zero(t, uintptr(unsafe.Pointer(&ft.flows[0]))%64, "record array not 64-byte aligned")
}

// HighWater is the highest record ever handed out: it grows with new
// records, stays when flows are removed and their records reused, and
// every live flow is at or below it.
func TestHighWater(t *testing.T) {
	ft := NewFlowTable(1<<16, testTimeouts, 0)
	assert.Zero(t, ft.HighWater(), "a new table has handed out no record")
	r := rand.New(rand.NewPCG(8, 8))
	var idx []uint32
	for range 10 {
		f := randomFlow(r)
		i, ok := ft.Insert(&f, 0)
		require.True(t, ok)
		idx = append(idx, i)
	}
	assert.Equal(t, uint32(10), ft.HighWater())
	ft.Remove(idx[3])
	ft.Remove(idx[9])
	assert.Equal(t, uint32(10), ft.HighWater(), "removing flows leaves the mark")
	for range 3 {
		f := randomFlow(r)
		i, ok := ft.Insert(&f, 0)
		require.True(t, ok)
		assert.LessOrEqual(t, i, uint32(11))
	}
	assert.Equal(t, uint32(11), ft.HighWater(), "freed records are reused before new ones")
	ft.Range(func(i uint32, _ *Flow) bool {
		assert.LessOrEqual(t, i, ft.HighWater())
		return true
	})
}
