package nat

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// limitsPolicy is the test policy with the given [limits].
func limitsPolicy(t testing.TB, hostPct, inPct int, prev *Policy) *Policy {
	s := testSpec(0)
	s.HostFlowPercent, s.InboundFlowPercent = hostPct, inPct
	return compileSpec(t, s, prev)
}

// outsideHost returns the i-th of many outside addresses.
func outsideHost(i int) uint32 { return ip4("203.0.113.0") + uint32(i) }

// Issue 14 item 7: one inside host can open at most host_flow_percent of a
// worker's table (25% by default); the others still get flows, and the
// host gets new ones as its old ones go. Fails before hostlimit.go: the
// host filled the table and memberB got flow_table_full.
func TestHostLimitInside(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 0), 100)
	for i := range 100 {
		v := tr.Outbound(udp(memberA, server, uint16(10000+i), 53).build(t), 1000)
		if i < 25 {
			require.Equal(t, VerdictForward, v, "flow %d", i)
		} else {
			require.Equal(t, DropHostLimit, v, "flow %d", i)
		}
	}
	assert.Equal(t, uint64(75), tr.Stats.Verdicts[DropHostLimit])
	assert.Equal(t, 25, tr.HostFlows(memberA, false))
	assert.Equal(t, VerdictForward, tr.Outbound(udp(memberB, server, 10000, 53).build(t), 1000), "another host is not locked out")
	// The host's existing flows keep working.
	assert.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 10000, 53).build(t), 1001))
	// Once they idle out, it opens new ones.
	tr.Expire(1000+TickFromDuration(5*time.Minute), 1<<20)
	assert.Zero(t, tr.HostFlows(memberA, false))
	assert.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 20000, 53).build(t), 1000+TickFromDuration(5*time.Minute)))
	assert.Equal(t, 1, tr.HostFlows(memberA, false))
}

// One-packet UDP flows from the internet to an instance's udp/* rule
// can't lock the inside out: one outside host gets host_flow_percent of
// the table, all of them together inbound_flow_percent, and a pool
// member's new flow still goes through. Fails before hostlimit.go: the
// flood filled the table and the member's flow was dropped as
// flow_table_full.
func TestInboundFlood(t *testing.T) {
	t.Run("one outside host", func(t *testing.T) {
		tr := newTestTranslator(t, testPolicy(t, 0), 100)
		for i := range 100 {
			tr.Inbound(udp(server, instPub, uint16(10000+i), 5353).build(t), 1000)
		}
		assert.Equal(t, 25, tr.Flows().Len())
		assert.Equal(t, uint64(75), tr.Stats.Verdicts[DropHostLimit])
		assert.Equal(t, 25, tr.HostFlows(server, true))
		assert.Equal(t, VerdictForward, tr.Inbound(udp(server2, instPub, 10000, 5353).build(t), 1000), "another outside host reaches the instance")
		assert.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 10000, 53).build(t), 1000))
	})
	t.Run("many outside hosts", func(t *testing.T) {
		tr := newTestTranslator(t, testPolicy(t, 0), 100)
		for i := range 100 {
			tr.Inbound(udp(outsideHost(i), instPub, 10000, 5353).build(t), 1000)
		}
		assert.Equal(t, 50, tr.InboundFlows())
		assert.Equal(t, uint64(50), tr.Stats.Verdicts[DropInboundLimit])
		assert.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 10000, 53).build(t), 1000), "the inside is not locked out")
		assert.Equal(t, VerdictForward, tr.Outbound(udp(instPriv, server, 10000, 53).build(t), 1000), "nor the instance itself")
		// A flood's flows going makes room for inbound flows again.
		tr.Expire(1000+TickFromDuration(5*time.Minute), 1<<20)
		assert.Zero(t, tr.InboundFlows())
		assert.Equal(t, VerdictForward, tr.Inbound(udp(outsideHost(0), instPub, 10000, 5353).build(t), 1000+TickFromDuration(5*time.Minute)))
	})
}

// The burst path applies the limits the same way: a burst of 64 new
// inbound flows from different hosts into a 64-flow table admits 32, and
// a burst of the inside's new flows after it is admitted.
func TestInboundFloodBurst(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 0), 64)
	pkts := make([][]byte, 64)
	verdicts := make([]Verdict, 64)
	for i := range pkts {
		pkts[i] = udp(outsideHost(i), instPub, 10000, 5353).build(t)
	}
	tr.InboundBurst(pkts, verdicts, 1000)
	var fwd, limited int
	for _, v := range verdicts {
		switch v {
		case VerdictForward:
			fwd++
		case DropInboundLimit:
			limited++
		}
	}
	assert.Equal(t, 32, fwd)
	assert.Equal(t, 32, limited)
	for i := range 16 {
		pkts[i] = udp(memberA, server, uint16(10000+i), 53).build(t)
		pkts[16+i] = udp(memberB, server, uint16(10000+i), 53).build(t)
	}
	tr.OutboundBurst(pkts[:32], verdicts, 1000)
	assert.Equal(t, slicesRepeat(VerdictForward, 32), verdicts[:32])
}

func slicesRepeat(v Verdict, n int) []Verdict {
	s := make([]Verdict, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// A reload changes the limits at once: flows above a lowered limit stay,
// new ones are refused until the host is below it; 100 lifts it.
func TestHostLimitReload(t *testing.T) {
	p1 := limitsPolicy(t, 50, 50, nil)
	tr := newTestTranslator(t, p1, 100)
	for i := range 40 {
		require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, uint16(10000+i), 53).build(t), 1000))
	}
	p2 := limitsPolicy(t, 10, 50, p1)
	tr.SetPolicy(p2)
	for !tr.Sweep(1000) {
	}
	assert.Equal(t, 40, tr.Flows().Len(), "flows above the new limit stay")
	assert.Equal(t, DropHostLimit, tr.Outbound(udp(memberA, server, 20000, 53).build(t), 1000))
	tr.SetPolicy(limitsPolicy(t, 100, 100, p2))
	for i := range 60 {
		require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, uint16(30000+i), 53).build(t), 1000), "flow %d", i)
	}
	assert.Equal(t, DropFlowTableFull, tr.Outbound(udp(memberB, server, 30000, 53).build(t), 1000))
}

// Refusing a flow for a limit allocates nothing, and neither does opening
// and expiring counted flows.
func TestHostLimitNoAllocs(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 0), 100)
	for i := range 25 {
		require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, uint16(10000+i), 53).build(t), 1000))
	}
	refused := udp(memberA, server, 20000, 53).build(t)
	work := make([]byte, len(refused))
	assert.Zero(t, testing.AllocsPerRun(200, func() {
		copy(work, refused)
		if tr.Outbound(work, 1000) != DropHostLimit {
			t.Fatal("not refused")
		}
	}))
	in := udp(outsideHost(1), instPub, 10000, 5353).build(t)
	now := Tick(1000)
	assert.Zero(t, testing.AllocsPerRun(200, func() {
		copy(work, in)
		if tr.Inbound(work[:len(in)], now) != VerdictForward {
			t.Fatal("not admitted")
		}
		now += TickFromDuration(5 * time.Minute)
		tr.Expire(now, 1<<20)
	}))
}

// hostCounts against a map: random increments and decrements of a few
// hundred hosts of both kinds, with deletions shifting probe runs.
func TestHostCounts(t *testing.T) {
	h := newHostCounts(300)
	want := map[[2]uint32]int{}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		k := [2]uint32{uint32(r.IntN(400)), 0}
		if r.IntN(2) == 0 {
			k[1] = hostOutside
		}
		if r.IntN(2) == 0 || want[k] == 0 {
			if h.inc(k[0], k[1]) {
				want[k]++
			} else {
				require.Equal(t, len(h.slots)-1, h.len, "refused only when full")
			}
		} else {
			h.dec(k[0], k[1])
			if want[k]--; want[k] == 0 {
				delete(want, k)
			}
		}
	}
	assert.Equal(t, len(want), h.len)
	for k, n := range want {
		assert.Equal(t, n, h.count(k[0], k[1]), "host %v", k)
	}
	for k, n := range want {
		for range n {
			h.dec(k[0], k[1])
		}
	}
	assert.Zero(t, h.len)
	for _, s := range h.slots {
		assert.Zero(t, s.n)
	}
}

// The translator's memory per flow of capacity, with the per-host counts,
// stays within 128 bytes.
func TestTranslatorMemoryPerFlow(t *testing.T) {
	const capacity = 1_000_000
	tr := newTestTranslator(t, testPolicy(t, 0), capacity)
	perFlow := float64(tr.MemoryBytes()) / capacity
	t.Logf("%.1f bytes/flow at %d flows", perFlow, capacity)
	assert.LessOrEqual(t, perFlow, 128.0)
}
