package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/portalloc"
)

// Tests of draining flows (issue 19 part 2, drain.go): a tier step up in
// drain mode keeps the flows on the ports it takes, the ports' new owner
// takes them towards other destinations, the deadline reclaims.

// newcomer is a member a reload adds: it gets the block slot the step up
// freed, so it owns ports memberA's flows still hold.
var newcomer = ip4("10.0.5.5")

// drainDeadline is the test policies' drain deadline: 5 s.
const drainDeadline Tick = 5000

// stepUpSpecs returns a policy with 2016-port blocks, and one where the
// blocks shrink to 1008 ports (as a tier step up does), newcomer joins and
// reclaim drains when drain is set.
func stepUpSpecs(drain bool) (PolicySpec, PolicySpec) {
	s1 := testSpec(2016)
	s2 := testSpec(1008)
	s2.Pools[0].Members = append(s2.Pools[0].Members, newcomer)
	s2.Drain = DrainSpec{Reclaim: drain, Deadline: drainDeadline}
	return s1, s2
}

// openFlows opens n UDP flows from src to dst:dport (source ports from
// 20000, or from base when given) and returns the public ports of those
// translated by source port.
func openFlows(t *testing.T, tr *Translator, src, dst uint32, dport uint16, n int, now Tick, base ...uint16) map[uint16]uint16 {
	t.Helper()
	out := map[uint16]uint16{}
	first := uint16(20000)
	if len(base) > 0 {
		first = base[0]
	}
	for i := range n {
		sport := first + uint16(i)
		b := udp(src, dst, sport, dport).build(t)
		if tr.Outbound(b, now) != VerdictForward {
			continue
		}
		out[sport] = parsed(t, b).sport
	}
	return out
}

func TestDrainTierStepUp(t *testing.T) {
	s1, s2 := stepUpSpecs(true)
	p1 := compileSpec(t, s1, nil)
	p2 := compileSpec(t, s2, p1)
	ma, _ := p2.Classify(memberA)
	mn, _ := p2.Classify(newcomer)
	require.Equal(t, portalloc.Block{Public: fe1, First: 1024, Last: 2031}, ma.Block)
	require.Equal(t, portalloc.Block{Public: fe1, First: 2032, Last: 3039}, mn.Block, "the newcomer owns the ports memberA loses")

	tr := newTestTranslator(t, p1, 16384)
	flows := openFlows(t, tr, memberA, server, 53, 400, 1000)
	require.Len(t, flows, 400)
	outside := map[uint16]uint16{} // memberA's flows on ports the step up takes
	for sp, pp := range flows {
		if !ma.Block.Contains(pp) {
			outside[sp] = pp
		}
	}
	require.NotEmpty(t, outside)
	require.Less(t, len(outside), 400)

	// natgw plan's predicates: the flows outside the new block drain.
	for sp := range flows {
		f := tr.Flows().Flow(tr.Flows().LookupOut(&OutKey{Priv: memberA, Remote: server, PrivPort: sp, RemotePort: 53, Proto: ProtoUDP}))
		_, out := outside[sp]
		assert.Equal(t, !out, p2.Keeps(f))
		assert.Equal(t, out, p2.Drains(f))
	}

	tr.SetPolicyAt(p2, 2000)
	for !tr.Sweep(1 << 20) {
	}
	assert.Equal(t, uint64(0), tr.Stats.FlowsExpired[ExpireReclaimed], "no flow is cut")
	assert.Equal(t, 400, tr.Flows().Len())
	assert.Equal(t, uint64(len(outside)), tr.Stats.FlowsDraining)
	uk := portalloc.Key{Private: memberA, Remote: server, RemotePort: 53, Proto: ProtoUDP}
	assert.Equal(t, 400-len(outside), tr.Usage().Count(uk), "draining flows leave their member's usage")

	// A draining flow still translates both ways, on its old port.
	for sp, pp := range outside {
		b := udp(memberA, server, sp, 53).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 2100))
		v := parsed(t, b)
		assert.Equal(t, pp, v.sport)
		r := reply(v).build(t)
		require.Equal(t, VerdictForward, tr.Inbound(r, 2100))
		assert.Equal(t, sp, parsed(t, r).dport)
	}

	// The newcomer takes every port of its block towards another
	// destination, the draining ports included.
	got := openFlows(t, tr, newcomer, server2, 53, 1008, 2200)
	assert.Len(t, got, 1008, "every port of the block, draining ones too, towards another destination")
	// Towards memberA's destination it can't take the draining ports.
	got = openFlows(t, tr, newcomer, server, 53, 1008, 2200)
	assert.Len(t, got, 1008-len(outside), "public 5-tuples stay unique")
	for _, pp := range got {
		for _, dp := range outside {
			require.NotEqual(t, dp, pp)
		}
	}

	// The deadline: not before, then every draining flow is reclaimed.
	require.True(t, tr.ExpireDrained(2000+drainDeadline-1, 1<<20))
	assert.Equal(t, uint64(len(outside)), tr.Stats.FlowsDraining)
	for !tr.ExpireDrained(2000+drainDeadline, 1000) {
	}
	assert.Equal(t, uint64(0), tr.Stats.FlowsDraining)
	assert.Equal(t, uint64(len(outside)), tr.Stats.FlowsExpired[ExpireReclaimed], "counted as reclaimed, as before")
	assert.Equal(t, uint64(len(outside)), tr.Stats.Drained[DrainDeadline])
	assert.Equal(t, 400-len(outside), tr.Usage().Count(uk), "the member's usage is untouched by the drained flows' end")
	assert.Equal(t, 400-len(outside)+1008+1008-len(outside), tr.Flows().Len())
	// The newcomer may now take the ports towards memberA's destination.
	got = openFlows(t, tr, newcomer, server, 53, 1008, 8000, 40000)
	assert.Len(t, got, len(outside))
}

// Without drain the same step up reclaims at once (the default).
func TestDrainOffReclaims(t *testing.T) {
	s1, s2 := stepUpSpecs(false)
	p1 := compileSpec(t, s1, nil)
	p2 := compileSpec(t, s2, p1)
	tr := newTestTranslator(t, p1, 16384)
	flows := openFlows(t, tr, memberA, server, 53, 200, 1000)
	ma, _ := p2.Classify(memberA)
	n := 0
	for _, pp := range flows {
		if !ma.Block.Contains(pp) {
			n++
		}
	}
	require.NotZero(t, n)
	tr.SetPolicyAt(p2, 2000)
	for !tr.Sweep(1 << 20) {
	}
	assert.Equal(t, uint64(n), tr.Stats.FlowsExpired[ExpireReclaimed])
	assert.Equal(t, uint64(0), tr.Stats.FlowsDraining)
}

// Draining flows end as any flow: idle out, close; each counted by
// outcome, and a later reload that no longer drains reclaims the rest.
func TestDrainOutcomes(t *testing.T) {
	s1, s2 := stepUpSpecs(true)
	p1 := compileSpec(t, s1, nil)
	p2 := compileSpec(t, s2, p1)
	ma, _ := p2.Classify(memberA)
	tr := newTestTranslator(t, p1, 16384)

	// TCP flows of memberA until one lies outside its future block; and
	// UDP flows likewise.
	var tcpPort uint16
	for sp := uint16(30000); tcpPort == 0; sp++ {
		b := tcp(memberA, server, sp, 80, TCPFlagSYN).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
		if v := parsed(t, b); !ma.Block.Contains(v.sport) {
			tcpPort = sp
			r := reply(v).build(t)
			require.Equal(t, VerdictForward, tr.Inbound(r, 1000))
		}
	}
	flows := openFlows(t, tr, memberA, server2, 53, 100, 1000)
	udpOut := 0
	for _, pp := range flows {
		if !ma.Block.Contains(pp) {
			udpOut++
		}
	}
	require.NotZero(t, udpOut)
	tr.SetPolicyAt(p2, 2000)
	for !tr.Sweep(1 << 20) {
	}
	require.Equal(t, uint64(1+udpOut), tr.Stats.FlowsDraining)

	// The TCP flow closes: FIN both ways, then the closing linger.
	fin := tcp(memberA, server, tcpPort, 80, TCPFlagFIN|TCPFlagACK).build(t)
	require.Equal(t, VerdictForward, tr.Outbound(fin, 2100))
	rfin := tcp(server, fe1, 80, parsed(t, fin).sport, TCPFlagFIN|TCPFlagACK).build(t)
	require.Equal(t, VerdictForward, tr.Inbound(rfin, 2100))
	// Everything else idles out after the UDP timeout, before the
	// deadline would matter (it is checked after).
	later := 2100 + p2.Timeouts.UDP + 10_000
	for {
		if _, more := tr.Expire(later, 1<<20); !more {
			break
		}
	}
	assert.Equal(t, uint64(1), tr.Stats.Drained[DrainClosed])
	assert.Equal(t, uint64(udpOut), tr.Stats.Drained[DrainIdle])
	assert.Equal(t, uint64(0), tr.Stats.FlowsDraining)
	assert.True(t, tr.ExpireDrained(later, 1<<20))
	assert.Equal(t, uint64(0), tr.Stats.Drained[DrainDeadline])

	t.Run("a reload back to immediate cuts", func(t *testing.T) {
		tr := newTestTranslator(t, p1, 16384)
		openFlows(t, tr, memberA, server, 53, 100, 1000)
		tr.SetPolicyAt(p2, 2000)
		for !tr.Sweep(1 << 20) {
		}
		n := tr.Stats.FlowsDraining
		require.NotZero(t, n)
		s3 := s2
		s3.Drain = DrainSpec{}
		tr.SetPolicyAt(compileSpec(t, s3, p2), 3000)
		for !tr.Sweep(1 << 20) {
		}
		assert.Equal(t, uint64(0), tr.Stats.FlowsDraining)
		assert.Equal(t, n, tr.Stats.Drained[DrainReclaimed])
		assert.Equal(t, n, tr.Stats.FlowsExpired[ExpireReclaimed])
	})
	t.Run("the deadline pass asks the newest policy first", func(t *testing.T) {
		tr := newTestTranslator(t, p1, 16384)
		openFlows(t, tr, memberA, server, 53, 100, 1000)
		tr.SetPolicyAt(p2, 2000)
		for !tr.Sweep(1 << 20) {
		}
		require.NotZero(t, tr.Stats.FlowsDraining)
		s3 := s1
		s3.Drain = s2.Drain
		tr.SetPolicyAt(compileSpec(t, s3, p2), 3000) // the ports back; no sweep yet
		for !tr.ExpireDrained(2000+drainDeadline, 7) {
		}
		assert.Equal(t, 100, tr.Flows().Len(), "a flow the newest policy keeps is not cut at its old deadline")
		assert.Equal(t, uint64(0), tr.Stats.FlowsDraining)
	})
	t.Run("a reload that gives the ports back resumes", func(t *testing.T) {
		tr := newTestTranslator(t, p1, 16384)
		openFlows(t, tr, memberA, server, 53, 100, 1000)
		tr.SetPolicyAt(p2, 2000)
		for !tr.Sweep(1 << 20) {
		}
		require.NotZero(t, tr.Stats.FlowsDraining)
		s3 := s1
		s3.Drain = s2.Drain
		p3 := compileSpec(t, s3, p2)
		tr.SetPolicyAt(p3, 3000)
		for !tr.Sweep(1 << 20) {
		}
		assert.Equal(t, uint64(0), tr.Stats.FlowsDraining)
		assert.Equal(t, 100, tr.Flows().Len())
		uk := portalloc.Key{Private: memberA, Remote: server, RemotePort: 53, Proto: ProtoUDP}
		assert.Equal(t, 100, tr.Usage().Count(uk), "back in its member's usage")
		assert.True(t, tr.ExpireDrained(2000+drainDeadline+1, 1<<20))
		assert.Equal(t, 100, tr.Flows().Len(), "no deadline any more")
	})
}

// The sweep (not only packets) marks flows draining, and the deadline
// pass ends them without any packet: flows that see no traffic.
func TestDrainSweepEndsAtDeadline(t *testing.T) {
	s1, s2 := stepUpSpecs(true)
	p1 := compileSpec(t, s1, nil)
	p2 := compileSpec(t, s2, p1)
	tr := newTestTranslator(t, p1, 4096)
	openFlows(t, tr, memberA, server, 53, 300, 1000)
	tr.SetPolicyAt(p2, 2000)
	for !tr.Sweep(100) {
	}
	n := tr.Stats.FlowsDraining
	require.NotZero(t, n)
	calls := 0
	for !tr.ExpireDrained(2000+drainDeadline, 64) {
		calls++
	}
	assert.Greater(t, calls, 1, "the deadline pass is bounded work per call")
	assert.Equal(t, n, tr.Stats.Drained[DrainDeadline])
	assert.Equal(t, 300-int(n), tr.Flows().Len())
}

// A drained flow's established path allocates nothing.
func TestDrainNoAllocs(t *testing.T) {
	s1, s2 := stepUpSpecs(true)
	p1 := compileSpec(t, s1, nil)
	p2 := compileSpec(t, s2, p1)
	tr := newTestTranslator(t, p1, 4096)
	flows := openFlows(t, tr, memberA, server, 53, 100, 1000)
	tr.SetPolicyAt(p2, 2000)
	ma, _ := p2.Classify(memberA)
	var sp uint16
	for s, pp := range flows {
		if !ma.Block.Contains(pp) {
			sp = s
		}
	}
	require.NotZero(t, sp)
	b := udp(memberA, server, sp, 53).build(t)
	buf := make([]byte, len(b))
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, b)
		tr.Outbound(buf, 2100)
		tr.ExpireDrained(2100, 16)
	})
	assert.Zero(t, allocs)
}

// A frontend set to drain: the pool's blocks move to its other frontend,
// the flows on the draining one live on (whatever reclaim says) until
// they end, new flows take the other frontend, and removing the drained
// frontend then cuts nothing.
func TestDrainFrontend(t *testing.T) {
	fe2 := ip4("198.19.1.12")
	s1 := testSpec(1008)
	s1.Frontends = append(s1.Frontends, fe2)
	s1.Pools[0].Frontends = []uint32{fe1, fe2}
	s2 := s1
	s2.Drain = DrainSpec{Frontends: []uint32{fe1}, Deadline: drainDeadline}
	p1 := compileSpec(t, s1, nil)
	p2 := compileSpec(t, s2, p1)
	m1, _ := p1.Classify(memberA)
	m2, _ := p2.Classify(memberA)
	require.Equal(t, fe1, m1.Block.Public)
	require.Equal(t, fe2, m2.Block.Public, "the block moves off the draining frontend")
	assert.Empty(t, p2.BlocksOnDraining(), "18 members fit on the other frontend")

	tr := newTestTranslator(t, p1, 4096)
	old := openFlows(t, tr, memberA, server, 53, 10, 1000)
	require.Len(t, old, 10)
	tr.SetPolicyAt(p2, 2000)
	for !tr.Sweep(1 << 20) {
	}
	assert.Equal(t, uint64(10), tr.Stats.FlowsDraining, "reclaim is immediate, but the frontend drains")
	assert.Equal(t, uint64(0), tr.Stats.FlowsExpired[ExpireReclaimed])
	for sp, pp := range old {
		b := udp(memberA, server, sp, 53).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 2100))
		v := parsed(t, b)
		assert.Equal(t, fe1, v.ip.Src(), "an existing flow keeps its address")
		assert.Equal(t, pp, v.sport)
	}
	b := udp(memberA, server, 30000, 53).build(t)
	require.Equal(t, VerdictForward, tr.Outbound(b, 2100))
	assert.Equal(t, fe2, parsed(t, b).ip.Src(), "a new flow takes the other frontend")

	// The old flows idle out; then a reload removes the frontend.
	later := 2100 + p2.Timeouts.UDP - 1
	b = udp(memberA, server, 30000, 53).build(t)
	require.Equal(t, VerdictForward, tr.Outbound(b, later)) // the new flow stays active
	for {
		if _, more := tr.Expire(later+2, 1<<20); !more {
			break
		}
	}
	assert.Equal(t, uint64(10), tr.Stats.Drained[DrainIdle])
	s3 := s1
	s3.Frontends = []uint32{feDef, fe2}
	s3.Pools[0].Frontends = []uint32{fe2}
	tr.SetPolicyAt(compileSpec(t, s3, p2), later+3)
	for !tr.Sweep(1 << 20) {
	}
	assert.Equal(t, uint64(0), tr.Stats.FlowsExpired[ExpireReclaimed], "nothing is cut")
	assert.Equal(t, 1, tr.Flows().Len())

	t.Run("no room: blocks stay and are listed", func(t *testing.T) {
		s := s2
		s.Pools = []PoolSpec{{Name: "big", Frontends: []uint32{fe1, fe2}, Members: hostsOf("10.0.4.0", 100), PortsPerMember: 1008}}
		p := compileSpec(t, s, nil)
		on := p.BlocksOnDraining()
		assert.Len(t, on, 100-64, "fe2 holds 64 blocks of 1008 ports")
		for _, b := range on {
			assert.Equal(t, fe1, b.Block.Public)
			assert.Equal(t, "big", b.Pool)
		}
	})
}

// An instance's public address set to drain: its flows (outbound and
// inbound) go on, its private address's new flows take the next scenario
// (default SNAT here), new inbound flows are refused, and it is still an
// instance for the NAT log until it leaves the configuration.
func TestDrainInstance(t *testing.T) {
	s1 := testSpec(0)
	s2 := s1
	s2.Drain = DrainSpec{Instances: []uint32{instPub}, Deadline: drainDeadline}
	p1 := compileSpec(t, s1, nil)
	p2 := compileSpec(t, s2, p1)
	m, _ := p2.Classify(instPriv)
	assert.Equal(t, ScenarioDefault, m.Scenario, "new flows take the next scenario")
	assert.True(t, p2.IsPublic(instPub), "natgw still answers for the address")
	assert.Len(t, p2.Instances(), 1)

	tr := newTestTranslator(t, p1, 4096)
	out := udp(instPriv, server, 40000, 53).build(t)
	require.Equal(t, VerdictForward, tr.Outbound(out, 1000))
	in := udp(server2, instPub, 5000, 6000).build(t)
	require.Equal(t, VerdictForward, tr.Inbound(in, 1000))
	tr.SetPolicyAt(p2, 2000)
	for !tr.Sweep(1 << 20) {
	}
	assert.Equal(t, uint64(2), tr.Stats.FlowsDraining)
	assert.Equal(t, uint64(0), tr.Stats.FlowsExpired[ExpireReclaimed])

	b := udp(instPriv, server, 40000, 53).build(t)
	require.Equal(t, VerdictForward, tr.Outbound(b, 2100))
	assert.Equal(t, instPub, parsed(t, b).ip.Src(), "an existing flow keeps the instance's address")
	b = udp(server2, instPub, 5000, 6000).build(t)
	require.Equal(t, VerdictForward, tr.Inbound(b, 2100), "an existing inbound flow goes on")
	b = udp(instPriv, server, 40001, 53).build(t)
	require.Equal(t, VerdictForward, tr.Outbound(b, 2100))
	assert.Equal(t, feDef, parsed(t, b).ip.Src(), "a new flow takes default SNAT")
	b = udp(server, instPub, 5001, 6001).build(t)
	assert.Equal(t, DropNoFlow, tr.Inbound(b, 2100), "no new inbound flow")

	for !tr.ExpireDrained(2000+drainDeadline, 1<<20) {
	}
	assert.Equal(t, uint64(2), tr.Stats.Drained[DrainDeadline])
	assert.Equal(t, 1, tr.Flows().Len(), "the default-SNAT flow stays")
	assert.Equal(t, 0, tr.InboundFlows(), "the inbound count follows")
}
