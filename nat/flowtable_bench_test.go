package nat

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

// benchTable is a table of n established random flows and the keys of
// those flows in random order.
type benchTable struct {
	ft      *FlowTable
	outKeys []OutKey
	inKeys  []InKey
}

var (
	benchTablesMu sync.Mutex
	benchTables   = map[int]*benchTable{}
)

// establishedTable returns a shared table holding n established flows, built
// once per size.
func establishedTable(b *testing.B, n int) *benchTable {
	benchTablesMu.Lock()
	defer benchTablesMu.Unlock()
	if bt, ok := benchTables[n]; ok {
		return bt
	}
	r := rand.New(rand.NewPCG(uint64(n), 1))
	bt := &benchTable{ft: NewFlowTable(n, testTimeouts, 0)}
	for bt.ft.Len() < n {
		f := randomFlow(r)
		f.Proto, f.State = testUDP, StateUDP
		if _, ok := bt.ft.Insert(&f, 0); ok {
			bt.outKeys = append(bt.outKeys, outKeyOf(&f))
			bt.inKeys = append(bt.inKeys, inKeyOf(&f))
		}
	}
	r.Shuffle(n, func(i, j int) {
		bt.outKeys[i], bt.outKeys[j] = bt.outKeys[j], bt.outKeys[i]
		bt.inKeys[i], bt.inKeys[j] = bt.inKeys[j], bt.inKeys[i]
	})
	benchTables[n] = bt
	return bt
}

var benchSizes = []struct {
	name string
	n    int
}{{"1K", 1_000}, {"1M", 1_000_000}}

// BenchmarkLookupBatch measures batched lookups of random established flows
// in bursts of 32, both directions; one op is one packet.
func BenchmarkLookupBatch(b *testing.B) {
	for _, size := range benchSizes {
		bt := establishedTable(b, size.n)
		b.Run(size.name+"/out", func(b *testing.B) {
			var res [lookupBurst]uint32
			keys := bt.outKeys
			b.ReportAllocs()
			b.ResetTimer()
			for done, pos := 0, 0; done < b.N; done += lookupBurst {
				if pos+lookupBurst > len(keys) {
					pos = 0
				}
				bt.ft.LookupOutBatch(keys[pos:pos+lookupBurst], res[:])
				if res[0] == 0 {
					b.Fatal("miss")
				}
				pos += lookupBurst
			}
		})
		b.Run(size.name+"/in", func(b *testing.B) {
			var res [lookupBurst]uint32
			keys := bt.inKeys
			b.ReportAllocs()
			b.ResetTimer()
			for done, pos := 0, 0; done < b.N; done += lookupBurst {
				if pos+lookupBurst > len(keys) {
					pos = 0
				}
				bt.ft.LookupInBatch(keys[pos:pos+lookupBurst], res[:])
				if res[0] == 0 {
					b.Fatal("miss")
				}
				pos += lookupBurst
			}
		})
	}
}

// BenchmarkLookupSingle measures one-at-a-time lookups of random
// established flows (no overlap of cache misses), for comparison.
func BenchmarkLookupSingle(b *testing.B) {
	for _, size := range benchSizes {
		bt := establishedTable(b, size.n)
		b.Run(size.name, func(b *testing.B) {
			keys := bt.outKeys
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if bt.ft.LookupOut(&keys[i%len(keys)]) == 0 {
					b.Fatal("miss")
				}
			}
		})
	}
}

// BenchmarkLookupMiss measures batched lookups of keys that are not in a
// 1M-flow table (new flows, unsolicited inbound packets).
func BenchmarkLookupMiss(b *testing.B) {
	bt := establishedTable(b, 1_000_000)
	r := rand.New(rand.NewPCG(77, 77))
	keys := make([]OutKey, 1<<16)
	for j := range keys {
		f := randomFlow(r)
		keys[j] = outKeyOf(&f)
	}
	var res [lookupBurst]uint32
	b.ReportAllocs()
	b.ResetTimer()
	for done, pos := 0, 0; done < b.N; done += lookupBurst {
		if pos+lookupBurst > len(keys) {
			pos = 0
		}
		bt.ft.LookupOutBatch(keys[pos:pos+lookupBurst], res[:])
		pos += lookupBurst
	}
}

// BenchmarkInsert measures new-flow inserts (both indexes and the wheel)
// into a 1M-capacity table filling from empty to 90%; one op is one insert.
func BenchmarkInsert(b *testing.B) {
	const capacity = 1_000_000
	const fill = capacity * 9 / 10
	r := rand.New(rand.NewPCG(21, 21))
	flows := make([]Flow, fill)
	for j := range flows {
		flows[j] = randomFlow(r)
	}
	ft := NewFlowTable(capacity, testTimeouts, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i, j = i+1, j+1 {
		if j == fill {
			b.StopTimer()
			ft = NewFlowTable(capacity, testTimeouts, 0)
			j = 0
			b.StartTimer()
		}
		ft.Insert(&flows[j], Tick(i))
	}
}

// BenchmarkInsertRemove measures churn in a 1M-capacity table kept 90%
// full: each op removes the oldest flow and inserts a new one.
func BenchmarkInsertRemove(b *testing.B) {
	const capacity = 1_000_000
	const fill = capacity * 9 / 10
	r := rand.New(rand.NewPCG(22, 22))
	ft := NewFlowTable(capacity, testTimeouts, 0)
	ring := make([]uint32, fill)
	for j := range ring {
		for {
			f := randomFlow(r)
			if i, ok := ft.Insert(&f, 0); ok {
				ring[j] = i
				break
			}
		}
	}
	fresh := make([]Flow, 1<<16)
	for j := range fresh {
		fresh[j] = randomFlow(r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		slot := i % fill
		ft.Remove(ring[slot])
		// A key never seen before: addresses outside randomFlow's ranges
		// numbered by i.
		f := &fresh[i&(len(fresh)-1)]
		f.Priv, f.PrivPort = 0x0b000000+uint32(i>>16), uint16(i)
		f.Pub, f.PubPort = 0xc7000000+uint32(i>>16), uint16(i)
		idx, ok := ft.Insert(f, Tick(i))
		if !ok {
			b.Fatal("insert failed")
		}
		ring[slot] = idx
	}
}

// BenchmarkExpire measures tear-downs: one op is one flow found due on the
// wheel, reported and removed.
func BenchmarkExpire(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.StopTimer() // the set-up is not a tear-down
			r := rand.New(rand.NewPCG(23, 23))
			flows := make([]Flow, n)
			for j := range flows {
				flows[j] = randomFlow(r)
				flows[j].Proto, flows[j].State = testUDP, StateUDP
			}
			// One table, refilled after each pass with flows idle since
			// base (spread over 100 s of wheel slots).
			ft := NewFlowTable(n, testTimeouts, 0)
			base := Tick(0)
			count := 0
			fn := func(uint32, *Flow, ExpireReason) { count++ }
			b.ReportAllocs()
			for done := 0; done < b.N; {
				for j := range flows {
					ft.Insert(&flows[j], base+Tick(j%100_000))
				}
				now := base + testTimeouts.UDP + 100_000
				b.StartTimer()
				n, _ := ft.Expire(now, b.N-done, fn)
				b.StopTimer()
				if n == 0 {
					b.Fatal("nothing expired")
				}
				done += n
				expireAll(b, ft, now, ft.Len()+1, nil)
				base = now
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}

// BenchmarkMemoryPerFlow reports the table's memory per flow at 1M and 10M
// flows capacity (bytes/flow), the connection table capacity figure of
// SPEC §9.
func BenchmarkMemoryPerFlow(b *testing.B) {
	for _, n := range []int{1_000_000, 10_000_000} {
		b.Run(strconv.Itoa(n/1_000_000)+"M", func(b *testing.B) {
			var perFlow float64
			for range b.N {
				ft := NewFlowTable(n, testTimeouts, 0)
				perFlow = float64(ft.MemoryBytes()) / float64(ft.Capacity())
			}
			b.ReportMetric(perFlow, "bytes/flow")
			if perFlow > 128 {
				b.Errorf("%.1f bytes/flow, want at most 128", perFlow)
			}
		})
	}
}
