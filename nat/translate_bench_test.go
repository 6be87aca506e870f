package nat

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// benchPktLen is a 64-byte Ethernet frame's IPv4 part: 20 IP + 8 UDP + 18
// payload (frame = 14 + 46 + 4 FCS).
const benchPktLen = 46

// benchFlows opens n UDP flows from pool members to many destinations and
// returns the pristine outbound packets and their replies, in random order.
func benchFlows(b *testing.B, n int) (*Translator, []byte, []byte) {
	return benchFlowsOf(b, n, n+n/8, testSpec(0))
}

// benchFlowsIn is benchFlows in a table of the given capacity.
func benchFlowsIn(b *testing.B, n, capacity int) (*Translator, []byte, []byte) {
	return benchFlowsOf(b, n, capacity, testSpec(0))
}

// benchFlowsOf is benchFlows in a table of the given capacity, under
// policy s.
func benchFlowsOf(b *testing.B, n, capacity int, s PolicySpec) (*Translator, []byte, []byte) {
	p := compileSpec(b, s, nil)
	tr := NewTranslator(p, TranslatorOptions{FlowCapacity: capacity, Seed: 42}, 1000)
	outs := make([]byte, n*benchPktLen)
	ins := make([]byte, n*benchPktLen)
	payload := make([]byte, benchPktLen-28)
	members := []uint32{memberA, memberB, ip4("10.0.2.1"), ip4("10.0.2.2")}
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
	buf := make([]byte, 128)
	for i := 0; i < n; i++ {
		// 512 flows per (member, destination): within a 1024-port block.
		src := members[i%len(members)]
		dst := ip4("198.18.0.0") + uint32(i/(512*len(members)))
		sport := uint16(1024 + (i/len(members))%512)
		m := BuildUDP(buf, src, dst, sport, 53, 64, payload)
		require.Equal(b, benchPktLen, m)
		slot := perm[i] * benchPktLen
		copy(outs[slot:], buf[:m])
		require.Equal(b, VerdictForward, tr.Outbound(buf[:m], 1000), "flow %d", i)
		copy(ins[slot:], mirror(buf[:m]))
	}
	return tr, outs, ins
}

// BenchmarkTranslateEstablished measures established-flow translation in
// bursts of 32, batched lookups, both directions. Each packet is first
// copied from a large array into the burst buffer, as a NIC would have
// written it; the copy is included in the time.
func BenchmarkTranslateEstablished(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 20} {
		tr, outs, ins := benchFlows(b, n)
		benchEstablished(b, fmt.Sprintf("flows=%d", n), tr, outs, ins)
	}
}

// BenchmarkTranslateSparse is BenchmarkTranslateEstablished with 1 K
// flows in tables sized for a peak (issue 20): the live flows' index
// slots spread over the whole index.
func BenchmarkTranslateSparse(b *testing.B) {
	for _, c := range []int{1 << 11, 1 << 21, 1 << 24} {
		tr, outs, ins := benchFlowsIn(b, 1<<10, c)
		benchEstablished(b, fmt.Sprintf("flows=1024/capacity=%d", c), tr, outs, ins)
	}
}

// benchEstablished runs the established-flow benchmark of both
// directions on tr's flows.
func benchEstablished(b *testing.B, name string, tr *Translator, outs, ins []byte) {
	{
		for _, dir := range []string{"out", "in"} {
			src := outs
			if dir == "in" {
				src = ins
			}
			b.Run(fmt.Sprintf("%s/%s", name, dir), func(b *testing.B) {
				benchBursts(b, tr, src, dir, VerdictForward)
			})
		}
	}
}

// BenchmarkNewFlow measures opening a flow: miss, classification, random
// port choice, insertion in both indexes and the wheel, usage count.
func BenchmarkNewFlow(b *testing.B) {
	p := testPolicy(b, 0)
	const capacity = 1 << 21
	payload := make([]byte, benchPktLen-28)
	buf := make([]byte, 128)
	members := []uint32{memberA, memberB, ip4("10.0.2.1"), ip4("10.0.2.2")}
	var tr *Translator
	made := capacity
	base := ip4("198.18.0.0")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if made == capacity {
			b.StopTimer()
			tr = NewTranslator(p, TranslatorOptions{FlowCapacity: capacity, Seed: 9}, 1000)
			made = 0
			b.StartTimer()
		}
		src := members[made%len(members)]
		dst := base + uint32(made/(512*len(members)))
		sport := uint16(1024 + (made/len(members))%512)
		BuildUDP(buf, src, dst, sport, 53, 64, payload) // about 25 ns of the figure
		if v := tr.Outbound(buf[:benchPktLen], 1000); v != VerdictForward {
			b.Fatalf("flow %d: %v", made, v)
		}
		made++
	}
}

// BenchmarkFlowMemory reports the bytes a translator holds per flow of
// capacity: flow records, both indexes, the wheel and the usage counts.
func BenchmarkFlowMemory(b *testing.B) {
	p := testPolicy(b, 0)
	for _, n := range []int{1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("capacity=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				tr := NewTranslator(p, TranslatorOptions{FlowCapacity: n, Seed: 1}, 1000)
				b.ReportMetric(float64(tr.MemoryBytes())/float64(n), "bytes/flow")
			}
		})
	}
}

// BenchmarkNewFlowBurst opens flows the way a worker does, in bursts of 32
// through OutboundBurst (batched lookups), at the same table size and with
// the same packet building as BenchmarkNewFlow.
func BenchmarkNewFlowBurst(b *testing.B) {
	p := testPolicy(b, 0)
	const capacity, burst = 1 << 21, 32
	payload := make([]byte, benchPktLen-28)
	members := []uint32{memberA, memberB, ip4("10.0.2.1"), ip4("10.0.2.2")}
	base := ip4("198.18.0.0")
	bufs := make([][]byte, burst)
	for i := range bufs {
		bufs[i] = make([]byte, 128)
	}
	verdicts := make([]Verdict, burst)
	var tr *Translator
	made := capacity
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += burst {
		if made+burst > capacity {
			b.StopTimer()
			tr = NewTranslator(p, TranslatorOptions{FlowCapacity: capacity, Seed: 9}, 1000)
			made = 0
			b.StartTimer()
		}
		for j := range bufs {
			src := members[made%len(members)]
			dst := base + uint32(made/(512*len(members)))
			sport := uint16(1024 + (made/len(members))%512)
			BuildUDP(bufs[j], src, dst, sport, 53, 64, payload)
			bufs[j] = bufs[j][:benchPktLen]
			made++
		}
		tr.OutboundBurst(bufs, verdicts, 1000)
		if verdicts[burst-1] != VerdictForward {
			b.Fatalf("flow %d: %v", made, verdicts[burst-1])
		}
	}
}
