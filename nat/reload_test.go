package nat

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/portalloc"
)

// Regression tests for issue 13: reloads in sequence and in the middle of
// a burst.

// specWith returns the test policy description with blocks of ppm ports
// and the UDP timeout udp, changed by each of extra in turn.
func specWith(ppm int, udp time.Duration, extra ...func(*PolicySpec)) PolicySpec {
	s := testSpec(ppm)
	s.Timeouts.UDP = TickFromDuration(udp)
	for _, f := range extra {
		f(&s)
	}
	return s
}

// denyServer adds a deny rule for all traffic to server.
func denyServer(s *PolicySpec) {
	s.Deny = append(s.Deny, DenyRule{Destination: Prefix{Addr: server, Bits: 32}, PortRule: PortRule{Lo: 0, Hi: 0xFFFF}})
}

// A second reload while a sweep runs restarts the sweep: every flow is
// checked against the newest policy, including those the sweep had
// already passed under the previous one.
func TestSweepRestartsOnReload(t *testing.T) {
	p1 := compileSpec(t, specWith(0, 4*time.Minute), nil)
	tr := newTestTranslator(t, p1, 8192) // 2000 flows of one host: within its 25%
	for i := range 2000 {
		require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 10000, uint16(1000+i)).build(t), 1000))
	}
	// A reload that changes nothing for these flows, swept half way.
	p2 := compileSpec(t, specWith(0, 5*time.Minute), p1)
	tr.SetPolicy(p2)
	require.False(t, tr.Sweep(1000))
	// A reload that denies their destination: every one must go.
	p3 := compileSpec(t, specWith(0, 5*time.Minute, denyServer), p2)
	tr.SetPolicy(p3)
	for !tr.Sweep(1000) {
	}
	assert.Equal(t, 0, tr.Flows().Len(), "flows the first sweep had passed are checked against the newest policy")
	assert.Equal(t, uint64(2000), tr.Stats.FlowsExpired[ExpireReclaimed])
	assert.Equal(t, 0, tr.Usage().Len(), "no port is counted in use")
}

// The sweep after a reload passes the records flows have used, not the
// whole capacity (issue 20): reading never-used records faulted in the
// whole record array on the worker. With 10 flows in a table of 1 M, one
// call of budget 64 completes it, and still reclaims every flow the new
// policy denies.
func TestSweepStopsAtHighWater(t *testing.T) {
	p1 := compileSpec(t, specWith(0, 4*time.Minute), nil)
	tr := newTestTranslator(t, p1, 1<<20)
	for i := range 10 {
		require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 10000, uint16(1000+i)).build(t), 1000))
	}
	p2 := compileSpec(t, specWith(0, 4*time.Minute, denyServer), p1)
	tr.SetPolicy(p2)
	assert.True(t, tr.Sweep(64), "one call passes the 10 records ever used")
	assert.Equal(t, 0, tr.Flows().Len())
	assert.Equal(t, uint64(10), tr.Stats.FlowsExpired[ExpireReclaimed])
}

// RFC 5508 REQ-3: an ICMP error whose checksum is wrong is dropped as
// malformed, in either direction, not translated with a fresh checksum
// that would make the corruption look valid.
func TestICMPErrorBadChecksumDropped(t *testing.T) {
	p := testPolicy(t, 0)
	corrupt := func(b []byte) {
		ip, _ := ParseIPv4(b)
		ip[len(ip)-1] ^= 0x40 // a bit of the quote, checksum left as is
	}
	t.Run("inbound", func(t *testing.T) {
		tr := newTestTranslator(t, p, 1024)
		sent := udp(memberA, server, 41000, 33434).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(sent, 1000))
		sentIP, _ := ParseIPv4(sent)
		eb := make([]byte, 1024)
		n := BuildICMPError(eb, router, sentIP.Src(), ICMPTimeExceeded, 0, 0, sentIP, 64)
		good := append([]byte(nil), eb[:n]...)
		bad := eb[:n]
		corrupt(bad)
		orig := append([]byte(nil), bad...)
		assert.Equal(t, DropMalformed, tr.Inbound(bad, 1001))
		assert.Equal(t, orig, bad, "a dropped error is left as it came")
		assert.Equal(t, uint64(1), tr.Stats.Verdicts[DropMalformed])
		require.Equal(t, VerdictForward, tr.Inbound(good, 1001), "the intact error still goes through")
		tr.InboundBurst([][]byte{orig}, make([]Verdict, 1), 1001)
		assert.Equal(t, uint64(2), tr.Stats.Verdicts[DropMalformed], "the burst path checks too")
	})
	t.Run("outbound", func(t *testing.T) {
		tr := newTestTranslator(t, p, 1024)
		in := udp(server, instPub, 5000, 6000).build(t)
		require.Equal(t, VerdictForward, tr.Inbound(in, 1000))
		delivered, _ := ParseIPv4(in)
		eb := make([]byte, 1024)
		n := BuildICMPError(eb, instPriv, server, ICMPDestUnreachable, 3, 0, delivered, 64)
		bad := eb[:n]
		corrupt(bad)
		assert.Equal(t, DropMalformed, tr.Outbound(bad, 1001))
	})
}

// A packet of a burst whose flow an earlier packet of the same burst
// removed (revalidation after a reload reclaimed it) must not use the
// record number the burst's batched lookup found: the record is free, or
// already another flow's.
func TestBurstStaleFlowAfterReclaim(t *testing.T) {
	p1 := compileSpec(t, specWith(0, 4*time.Minute), nil)
	p2 := compileSpec(t, specWith(0, 4*time.Minute, denyServer), p1)
	build := func(ps ...pkt) [][]byte {
		var bs [][]byte
		for _, p := range ps {
			bs = append(bs, p.build(t))
		}
		return bs
	}
	t.Run("outbound X Z X", func(t *testing.T) {
		tr := newTestTranslator(t, p1, 1024)
		x := udp(memberA, server, 1111, 53)
		require.Equal(t, VerdictForward, tr.Outbound(x.build(t), 1000))
		tr.SetPolicy(p2)
		z := udp(memberB, server2, 2222, 53)
		bs := build(x, z, x)
		v := make([]Verdict, len(bs))
		tr.OutboundBurst(bs, v, 1001)
		assert.Equal(t, []Verdict{DropDenied, VerdictForward, DropDenied}, v)
		assert.Equal(t, 1, tr.Flows().Len())
		assert.Equal(t, uint64(1), tr.Stats.FlowsExpired[ExpireReclaimed])
	})
	t.Run("outbound echo X X", func(t *testing.T) {
		tr := newTestTranslator(t, p1, 1024)
		x := pkt{proto: ProtoICMP, src: memberA, dst: server, icmpType: ICMPEchoRequest, icmpID: 7}
		require.Equal(t, VerdictForward, tr.Outbound(x.build(t), 1000))
		tr.SetPolicy(p2)
		bs := build(x, x)
		v := make([]Verdict, len(bs))
		tr.OutboundBurst(bs, v, 1001)
		assert.Equal(t, []Verdict{DropDenied, DropDenied}, v)
		assert.Equal(t, uint64(0), tr.Stats.FlowsActive[ProtoIndex(ProtoICMP)], "the active gauge does not underflow")
		assert.Equal(t, uint64(1), tr.Stats.FlowsExpired[ExpireReclaimed], "the flow is reclaimed once")
	})
	t.Run("inbound X Y X", func(t *testing.T) {
		tr := newTestTranslator(t, p1, 1024)
		out := udp(memberA, server, 1111, 53).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(out, 1000))
		x := reply(parsed(t, out))
		tr.SetPolicy(p2)
		y := udp(server2, instPub, 5000, 6000) // opens an instance flow
		bs := build(x, y, x)
		v := make([]Verdict, len(bs))
		tr.InboundBurst(bs, v, 1001)
		assert.Equal(t, []Verdict{DropNoFlow, VerdictForward, DropNoFlow}, v)
		assert.Equal(t, 1, tr.Flows().Len())
	})
}

// [S7] across reloads in sequence: a member whose block moved when its
// pool stepped down a tier keeps its flows through the grace block, and
// keeps them on every later reload that leaves its block alone (here a
// timeout change, then an unrelated deny rule).
func TestGraceSurvivesLaterReloads(t *testing.T) {
	cfg := func(n int, udp time.Duration, extra ...func(*PolicySpec)) PolicySpec {
		s := specWith(0, udp, extra...)
		s.Pools[0].Members = hostsOf("10.0.4.1", n)
		return s
	}
	m1 := ip4("10.0.4.2")
	p51 := compileSpec(t, cfg(51, 4*time.Minute), nil)
	tr := newTestTranslator(t, p51, 1<<12)
	var sent [][]byte
	for i := range 20 {
		b := udp(m1, server, uint16(20000+i), 53).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
		sent = append(sent, b)
	}
	reload := func(p *Policy) {
		tr.SetPolicy(p)
		for !tr.Sweep(1024) {
		}
	}
	p50 := compileSpec(t, cfg(50, 4*time.Minute), p51)
	before, _ := p51.Classify(m1)
	after, _ := p50.Classify(m1)
	require.False(t, after.Block.Contains(before.Block.First), "the member moved to a new block: the test needs grace")
	reload(p50)
	require.Equal(t, 20, tr.Flows().Len(), "the step down keeps the flows")

	p50b := compileSpec(t, cfg(50, 5*time.Minute), p50)
	reload(p50b)
	assert.Equal(t, 20, tr.Flows().Len(), "a timeout change keeps them")
	p50c := compileSpec(t, cfg(50, 5*time.Minute, func(s *PolicySpec) {
		s.Deny = append(s.Deny, DenyRule{Destination: Prefix{Addr: ip4("203.0.113.0"), Bits: 24}, PortRule: PortRule{Hi: 0xFFFF}})
	}), p50b)
	reload(p50c)
	assert.Equal(t, 20, tr.Flows().Len(), "an unrelated deny rule keeps them")
	assert.Zero(t, tr.Stats.FlowsExpired[ExpireReclaimed])
	for i := range 20 {
		b := udp(m1, server, uint16(20000+i), 53).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 2000))
		assert.Equal(t, parsed(t, sent[i]).sport, parsed(t, b).sport, "flow %d keeps its port", i)
	}
}

// Every default-SNAT flow is counted on exactly the allocator it releases
// on: across a reload that rebuilds the allocator (default_snat changed)
// and when revalidation moves a flow into or out of default scope.
func TestDefaultSNATCountsAcrossReloads(t *testing.T) {
	fe3 := ip4("198.19.1.30")
	// withFE3 adds the frontend fe3; with defaults, default SNAT takes
	// its blocks on those frontends.
	withFE3 := func(defaults ...uint32) PolicySpec {
		return specWith(0, 4*time.Minute, func(s *PolicySpec) {
			s.Frontends = append(s.Frontends, fe3)
			if len(defaults) > 0 {
				s.DefaultSNAT.Frontends = defaults
			}
		})
	}
	p1 := compileSpec(t, withFE3(), nil)
	d1 := p1.DefaultSNAT()
	tr := newTestTranslator(t, p1, 1024)
	require.Equal(t, VerdictForward, tr.Outbound(udp(dflt, server, 3000, 53).build(t), 1000))
	require.Equal(t, 1, d1.Flows(dflt))

	t.Run("rebuilt allocator", func(t *testing.T) {
		// A second frontend rebuilds the allocator; the first block is the
		// same, so the old flow stays after the new flow takes it.
		p2 := compileSpec(t, withFE3(feDef, fe3), p1)
		d2 := p2.DefaultSNAT()
		require.True(t, d1 != d2, "a new allocator")
		tr.SetPolicy(p2)
		require.Equal(t, VerdictForward, tr.Outbound(udp(dflt, server, 3001, 53).build(t), 1001))
		for !tr.Sweep(1024) {
		}
		require.Equal(t, 2, tr.Flows().Len(), "the old flow keeps its block")
		assert.Equal(t, 2, d2.Flows(dflt), "the kept flow is counted on the running allocator")
		assert.Equal(t, 0, d1.Flows(dflt), "and no more on the old one")
		tr.Expire(1000+300_000, 1<<20)
		require.Equal(t, 0, tr.Flows().Len())
		assert.Equal(t, 0, d2.Flows(dflt), "never negative")
		p1 = p2
	})

	t.Run("old allocator released on", func(t *testing.T) {
		// A flow the reload does not keep (its address gets no block on the
		// new allocator) releases on the allocator that counted it.
		require.Equal(t, VerdictForward, tr.Outbound(udp(dflt, server, 3002, 53).build(t), 400_000))
		old := p1.DefaultSNAT()
		require.Equal(t, 1, old.Flows(dflt))
		p3 := compileSpec(t, withFE3(fe3), p1)
		tr.SetPolicy(p3)
		for !tr.Sweep(1024) {
		}
		assert.Equal(t, 0, tr.Flows().Len())
		assert.Equal(t, 0, old.Flows(dflt))
		assert.Equal(t, 0, p3.DefaultSNAT().Flows(dflt))
		p1 = p3
	})

	t.Run("into and out of default scope", func(t *testing.T) {
		// Configurations keep pools and default SNAT on distinct
		// frontends, so a kept move needs a hand-made policy: dflt is a
		// pool member whose block is its default-SNAT block.
		d := p1.DefaultSNAT()
		b, ok := d.Lookup(dflt)
		if !ok {
			b, ok = d.Assign(dflt)
		}
		require.True(t, ok)
		pool := compileSpec(t, withFE3(fe3), p1)
		pool.members[dflt] = member{pool: 0, block: b}
		tr.SetPolicy(pool)
		require.Equal(t, VerdictForward, tr.Outbound(udp(dflt, server, 3003, 53).build(t), 500_000))
		require.Equal(t, 0, d.Flows(dflt), "a pool flow is not counted on the allocator")

		back := compileSpec(t, withFE3(fe3), pool)
		require.True(t, d == back.DefaultSNAT(), "the same allocator")
		tr.SetPolicy(back)
		for !tr.Sweep(1024) {
		}
		require.Equal(t, 1, tr.Flows().Len(), "the flow keeps its port in default scope")
		assert.Equal(t, 1, d.Flows(dflt), "moving into default scope counts it")

		out := compileSpec(t, withFE3(fe3), back)
		out.members[dflt] = member{pool: 0, block: b}
		tr.SetPolicy(out)
		for !tr.Sweep(1024) {
		}
		require.Equal(t, 1, tr.Flows().Len())
		assert.Equal(t, 0, d.Flows(dflt), "moving out of default scope releases it")
		tr.Expire(500_000+300_000, 1<<20)
		assert.Equal(t, 0, tr.Flows().Len())
		assert.Equal(t, 0, d.Flows(dflt))
	})
}

// More reloads that rebuild the default-SNAT allocator than a worker can
// name at once, with a flow counted on each and no sweep in between: the
// worker's table of allocators never overflows, and every flow stays
// counted on the allocator it releases on.
func TestDefaultSNATManyAllocators(t *testing.T) {
	cfg := func(i int) PolicySpec {
		return specWith(0, 4*time.Minute, func(s *PolicySpec) { s.DefaultSNAT.PortsPerMember = 1024 << (i % 2) })
	}
	p := compileSpec(t, cfg(0), nil)
	tr := newTestTranslator(t, p, 1024)
	for i := range maxSNATs + 10 {
		if i > 0 {
			p = compileSpec(t, cfg(i), p)
			tr.SetPolicy(p)
		}
		require.Equal(t, VerdictForward, tr.Outbound(udp(dflt, server, 3000, uint16(1000+i)).build(t), 1000), "reload %d", i)
	}
	assert.NotZero(t, tr.Stats.FlowsExpired[ExpireReclaimed], "the full table made the worker revalidate at once")
	for !tr.Sweep(1024) {
	}
	assert.Equal(t, tr.Flows().Len(), p.DefaultSNAT().Flows(dflt))
	tr.Expire(1000+300_000, 1<<20)
	assert.Equal(t, 0, tr.Flows().Len())
	assert.Equal(t, 0, p.DefaultSNAT().Flows(dflt))
	n := 0
	for i := 1; i < maxSNATs; i++ {
		if tr.snats[i].d != nil {
			n++
		}
	}
	assert.LessOrEqual(t, n, 1, "only the running allocator is left")
}

// graceFor: which previous ports a member's flows keep after a reload.
func TestGraceFor(t *testing.T) {
	const a, b = 0xC6130100, 0xC6130200
	blk := func(pub uint32, first, last uint16) portalloc.Block {
		return portalloc.Block{Public: pub, First: first, Last: last}
	}
	none := portalloc.Block{}
	for _, tc := range []struct {
		name               string
		block, grace, next portalloc.Block
		want               portalloc.Block
	}{
		{"new member", none, none, blk(a, 1024, 2047), none},
		{"unchanged, no grace", blk(a, 1024, 2047), none, blk(a, 1024, 2047), none},
		{"grown in place", blk(a, 1024, 1535), none, blk(a, 1024, 2047), none},
		{"grown elsewhere", blk(a, 1536, 2047), none, blk(a, 2048, 3071), blk(a, 1536, 2047)},
		{"unchanged keeps its grace", blk(a, 2048, 3071), blk(a, 1536, 2047), blk(a, 2048, 3071), blk(a, 1536, 2047)},
		{"grown over the grace", blk(a, 2048, 3071), blk(a, 1536, 2047), blk(a, 0, 4095), none},
		{"grown over the block only", blk(a, 2048, 3071), blk(a, 1536, 2047), blk(a, 2048, 4095), blk(a, 1536, 2047)},
		{"grown away from both", blk(a, 2048, 3071), blk(a, 1536, 2047), blk(a, 4096, 6143), blk(a, 1536, 3071)},
		{"grown away, other address", blk(a, 2048, 3071), blk(b, 1536, 2047), blk(a, 4096, 6143), blk(a, 2048, 3071)},
		{"shrunk: reclaimed", blk(a, 2048, 3071), blk(a, 1536, 2047), blk(a, 2048, 2559), none},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, graceFor(member{block: tc.block, grace: tc.grace}, tc.next))
		})
	}
}
