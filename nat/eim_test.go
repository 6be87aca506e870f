package nat

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 19 part 1: endpoint-independent mapping and the filtering modes
// (RFC 4787 REQ-1, REQ-8).

// eimSpec is the test spec with the pool and default SNAT mapping
// endpoint independently with filtering f, pool blocks of ppm ports.
func eimSpec(ppm int, f FilteringMode) PolicySpec {
	s := testSpec(ppm)
	s.Pools[0].Mapping, s.Pools[0].Filtering = MappingEndpointIndependent, f
	s.DefaultSNAT.Mapping, s.DefaultSNAT.Filtering = MappingEndpointIndependent, f
	return s
}

// outPort sends b from the inside and returns its public source.
func outPort(t *testing.T, tr *Translator, p pkt, now Tick) (uint32, uint16) {
	t.Helper()
	b := p.build(t)
	require.Equal(t, VerdictForward, tr.Outbound(b, now), "%+v", p)
	v := parsed(t, b)
	return v.ip.Src(), v.sport
}

func TestEIMSamePortForEveryDestination(t *testing.T) {
	for _, src := range []uint32{memberA, dflt} {
		for _, proto := range []uint8{ProtoUDP, ProtoTCP} {
			t.Run(fmt.Sprintf("%s from %s", ProtoName(proto), AddrFrom(src)), func(t *testing.T) {
				tr := newTestTranslator(t, compileSpec(t, eimSpec(0, FilteringAddressPortDependent), nil), 1024)
				mk := func(sport uint16, dst uint32, dport uint16) pkt {
					if proto == ProtoTCP {
						return tcp(src, dst, sport, dport, TCPFlagSYN)
					}
					return udp(src, dst, sport, dport)
				}
				pub, port := outPort(t, tr, mk(40000, server, 3478), 1000)
				for _, d := range []struct {
					dst   uint32
					dport uint16
				}{{server, 3479}, {server2, 3478}, {server2, 80}, {ip4("203.0.113.9"), 443}} {
					p2, port2 := outPort(t, tr, mk(40000, d.dst, d.dport), 1000)
					assert.Equal(t, pub, p2)
					assert.Equal(t, port, port2, "same public port towards %s:%d", AddrFrom(d.dst), d.dport)
				}
				gp, gport, ok := tr.MappingOf(proto, src, 40000)
				require.True(t, ok)
				assert.Equal(t, [2]any{pub, port}, [2]any{gp, gport})
				// Another private endpoint never gets that port, even
				// towards a destination the first has no flow with.
				_, other := outPort(t, tr, mk(40001, ip4("203.0.113.77"), 53), 1000)
				assert.NotEqual(t, port, other)
				assert.Equal(t, 2, tr.Mappings())
				assert.Equal(t, 6, tr.Flows().Len())
			})
		}
	}
	t.Run("ICMP echo keeps an identifier per destination", func(t *testing.T) {
		tr := newTestTranslator(t, compileSpec(t, eimSpec(0, FilteringEndpointIndependent), nil), 1024)
		outPort(t, tr, pkt{proto: ProtoICMP, src: memberA, dst: server, icmpType: ICMPEchoRequest, icmpID: 7}, 1000)
		assert.Zero(t, tr.Mappings())
	})
}

// The capacity trade-off (docs/OPERATIONS.md): with an 8-port block a
// member maps at most 8 private endpoints at once, whatever the
// destinations; address-and-port-dependent mapping gives 8 per
// destination.
func TestEIMCapacity(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec PolicySpec
		want Verdict
	}{
		{"endpoint-independent", eimSpec(8, FilteringAddressPortDependent), DropPortExhausted},
		{"address-and-port-dependent", testSpec(8), VerdictForward},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTranslator(t, compileSpec(t, tc.spec, nil), 1024)
			for i := range 8 {
				outPort(t, tr, udp(memberA, server, uint16(40000+i), 53), 1000)
			}
			require.Equal(t, DropPortExhausted, tr.Outbound(udp(memberA, server, 40008, 53).build(t), 1000))
			assert.Equal(t, tc.want, tr.Outbound(udp(memberA, server2, 40009, 53).build(t), 1000),
				"a ninth endpoint towards another destination")
			// Existing mappings still reach new destinations.
			outPort(t, tr, udp(memberA, server2, 40000, 53), 1000)
		})
	}
}

func TestEIMFiltering(t *testing.T) {
	type probe struct {
		name   string
		remote uint32
		rport  uint16
	}
	probes := []probe{
		{"the remote endpoint of the flow", server, 3478},
		{"another port of that address", server, 3479},
		{"another address", server2, 3478},
	}
	for _, tc := range []struct {
		mode FilteringMode
		want []Verdict // by probe
	}{
		{FilteringAddressPortDependent, []Verdict{VerdictForward, DropNoFlow, DropNoFlow}},
		{FilteringAddressDependent, []Verdict{VerdictForward, VerdictForward, DropNoFlow}},
		{FilteringEndpointIndependent, []Verdict{VerdictForward, VerdictForward, VerdictForward}},
	} {
		for _, src := range []uint32{memberA, dflt} {
			t.Run(fmt.Sprintf("%s from %s", tc.mode, AddrFrom(src)), func(t *testing.T) {
				tr := newTestTranslator(t, compileSpec(t, eimSpec(0, tc.mode), nil), 1024)
				pub, port := outPort(t, tr, udp(src, server, 40000, 3478), 1000)
				for i, pr := range probes {
					b := udp(pr.remote, pub, pr.rport, port).build(t)
					got := tr.Inbound(b, 2000)
					assert.Equal(t, tc.want[i], got, pr.name)
					if got != VerdictForward {
						continue
					}
					v := parsed(t, b)
					assert.Equal(t, src, v.ip.Dst(), pr.name)
					assert.Equal(t, uint16(40000), v.dport, pr.name)
					// The answer takes the flow the packet opened, on
					// the same public port.
					p2, port2 := outPort(t, tr, udp(src, pr.remote, 40000, pr.rport), 2000)
					assert.Equal(t, [2]any{pub, port}, [2]any{p2, port2}, pr.name)
				}
				// Nothing unsolicited reaches a public port no mapping holds.
				assert.Equal(t, DropNoFlow, tr.Inbound(udp(server2, pub, 3478, port+1).build(t), 2000))
			})
		}
	}
	t.Run("only a SYN opens an inbound TCP flow", func(t *testing.T) {
		tr := newTestTranslator(t, compileSpec(t, eimSpec(0, FilteringEndpointIndependent), nil), 1024)
		pub, port := outPort(t, tr, tcp(memberA, server, 40000, 80, TCPFlagSYN), 1000)
		assert.Equal(t, DropNoFlow, tr.Inbound(tcp(server2, pub, 5000, port, TCPFlagACK).build(t), 1000))
		assert.Equal(t, VerdictForward, tr.Inbound(tcp(server2, pub, 5000, port, TCPFlagSYN).build(t), 1000))
		assert.Equal(t, 2, tr.Flows().Len())
	})
}

func TestEIMMappingReleasedWithLastFlow(t *testing.T) {
	const sec = Tick(1000)
	tr := newTestTranslator(t, compileSpec(t, eimSpec(0, FilteringEndpointIndependent), nil), 1024)
	pub, port := outPort(t, tr, udp(memberA, server, 40000, 53), 1000)
	outPort(t, tr, udp(memberA, server2, 40000, 53), 100*sec)
	// Inbound-opened flows hold the mapping too.
	require.Equal(t, VerdictForward, tr.Inbound(udp(ip4("203.0.113.5"), pub, 9, port).build(t), 150*sec))
	require.Equal(t, 3, tr.Flows().Len())

	tr.Expire(1000+240*sec+200, 1<<20) // the first flow idles out
	assert.Equal(t, 2, tr.Flows().Len())
	assert.Equal(t, 1, tr.Mappings(), "two flows still hold the mapping")
	_, port2 := outPort(t, tr, udp(memberA, ip4("203.0.113.6"), 40000, 53), 200*sec)
	assert.Equal(t, port, port2)

	tr.Expire(200*sec+240*sec+400, 1<<20) // every flow idles out
	assert.Zero(t, tr.Flows().Len())
	assert.Zero(t, tr.Mappings(), "the mapping ends with its last flow")
	assert.Equal(t, DropNoFlow, tr.Inbound(udp(ip4("203.0.113.5"), pub, 9, port).build(t), 500*sec),
		"no mapping, no inbound flow")
	assert.Zero(t, tr.eim.remN, "no (mapping, remote) pair left")
	// The private endpoint maps again.
	outPort(t, tr, udp(memberA, server, 40000, 53), 500*sec)
	assert.Equal(t, 1, tr.Mappings())
}

func TestEIMTableFull(t *testing.T) {
	p := compileSpec(t, eimSpec(0, FilteringAddressDependent), nil)
	t.Run("mappings", func(t *testing.T) {
		tr := NewTranslator(p, TranslatorOptions{FlowCapacity: 1024, Seed: 1, MappingCapacity: 4}, 1000)
		for i := range 4 {
			outPort(t, tr, udp(memberA, server, uint16(40000+i), 53), 1000)
		}
		assert.Equal(t, DropFlowTableFull, tr.Outbound(udp(memberA, server, 40004, 53).build(t), 1000))
		assert.Equal(t, uint64(1), tr.Stats.Verdicts[DropFlowTableFull], "counted")
		assert.Equal(t, 4, tr.Flows().Len(), "nothing half made")
		assert.Equal(t, 4, tr.Mappings())
		// The mapped endpoints still reach new destinations.
		outPort(t, tr, udp(memberA, server2, 40003, 53), 1000)
		tr.Expire(1000+TickFromDuration(5*time.Minute), 1<<20)
		assert.Zero(t, tr.Mappings())
		outPort(t, tr, udp(memberA, server, 40004, 53), 400000)
	})
	t.Run("remote addresses", func(t *testing.T) {
		// 4 mappings' worth of table holds 8 (mapping, address) pairs.
		tr := NewTranslator(p, TranslatorOptions{FlowCapacity: 1024, Seed: 1, MappingCapacity: 4}, 1000)
		for i := range 8 {
			outPort(t, tr, udp(memberA, ip4("203.0.113.1")+uint32(i), 40000, 53), 1000)
		}
		outPort(t, tr, udp(memberA, ip4("203.0.113.1"), 40000, 54), 1000) // a known address: no new pair
		assert.Equal(t, DropFlowTableFull, tr.Outbound(udp(memberA, server, 40000, 53).build(t), 1000))
		assert.Equal(t, 9, tr.Flows().Len())
		assert.Equal(t, 8, tr.eim.remN)
	})
	t.Run("flow table", func(t *testing.T) {
		s := eimSpec(0, FilteringAddressDependent)
		s.HostFlowPercent = 0 // the flow table, not the host limit, is full
		tr := NewTranslator(compileSpec(t, s, nil), TranslatorOptions{FlowCapacity: 4, Seed: 1}, 1000)
		for i := range 4 {
			outPort(t, tr, udp(memberA, server, 40000, uint16(53+i)), 1000)
		}
		assert.Equal(t, DropFlowTableFull, tr.Outbound(udp(memberA, server, 40001, 53).build(t), 1000))
		assert.Equal(t, 1, tr.Mappings(), "the refused flow's mapping is not left behind")
		assert.Equal(t, uint32(4), tr.eim.ents[1].flows)
	})
}

// A reload that changes a pool's mapping mode reclaims its flows: a flow
// holds a mapping exactly when its scope maps endpoint independently.
func TestEIMReloadChangesMode(t *testing.T) {
	apdm := compileSpec(t, testSpec(0), nil)
	eim := compileSpec(t, eimSpec(0, FilteringEndpointIndependent), apdm)
	tr := newTestTranslator(t, apdm, 1024)
	outPort(t, tr, udp(memberA, server, 40000, 53), 1000)
	tr.SetPolicy(eim)
	for !tr.Sweep(1 << 20) {
	}
	assert.Zero(t, tr.Flows().Len())
	assert.Equal(t, uint64(1), tr.Stats.FlowsExpired[ExpireReclaimed])
	_, port := outPort(t, tr, udp(memberA, server, 40000, 53), 2000)
	assert.Equal(t, 1, tr.Mappings())

	filt := compileSpec(t, eimSpec(0, FilteringAddressDependent), eim)
	tr.SetPolicy(filt)
	for !tr.Sweep(1 << 20) {
	}
	assert.Equal(t, 1, tr.Flows().Len(), "a filtering change keeps the flows")
	assert.Equal(t, DropNoFlow, tr.Inbound(udp(server2, fe1, 1, port).build(t), 3000), "filtered by the new mode")

	back := compileSpec(t, testSpec(0), filt)
	tr.SetPolicy(back)
	for !tr.Sweep(1 << 20) {
	}
	assert.Zero(t, tr.Flows().Len())
	assert.Zero(t, tr.Mappings())
}

func TestEIMNoAllocs(t *testing.T) {
	tr := newTestTranslator(t, compileSpec(t, eimSpec(0, FilteringAddressDependent), nil), 1024)
	out := udp(memberA, server, 40000, 53).build(t)
	work := append([]byte(nil), out...)
	require.Equal(t, VerdictForward, tr.Outbound(work, 1000))
	v := parsed(t, work)
	in := reply(v).build(t)
	filtered := udp(server2, v.ip.Src(), 53, v.sport).build(t)
	inWork := make([]byte, len(in))
	allocs := testing.AllocsPerRun(1000, func() {
		copy(work, out)
		tr.Outbound(work, 1000)
		copy(inWork, in)
		tr.Inbound(inWork, 1000)
		copy(inWork, filtered) // the miss path: mapping found, filtered
		if tr.Inbound(inWork, 1000) != DropNoFlow {
			panic("not filtered")
		}
	})
	assert.Zero(t, allocs)
	// Opening and ending flows of a mapping allocates nothing either.
	now := Tick(1000)
	allocs = testing.AllocsPerRun(100, func() {
		now += TickFromDuration(5 * time.Minute)
		copy(work, out)
		tr.Outbound(work, now)
		tr.Expire(now+TickFromDuration(5*time.Minute), 1<<20)
	})
	assert.Zero(t, allocs)
}

// With several workers, a packet that misses on a worker other than its
// mapping's owner gets VerdictHandoff, untouched, and HandoffOwner names
// the owner; the owner translates it. Outbound, inbound, ICMP errors
// about the flow both ways, and later fragments.
func TestEIMHandoff(t *testing.T) {
	const workers = 2
	p := compileSpec(t, eimSpec(0, FilteringEndpointIndependent), nil)
	var trs [workers]*Translator
	for i := range trs {
		trs[i] = NewTranslator(p, TranslatorOptions{Worker: i, Workers: workers, FlowCapacity: 1024, Seed: uint64(i + 1)}, 1000)
	}
	own := EIMOwner(ProtoUDP, memberA, 40000, workers)
	other := trs[1-own]
	// send gives b to the other worker, checks the handoff, then to the
	// owner, and returns the owner's verdict.
	send := func(t *testing.T, b []byte, dir int, frag bool, sport, dport uint16) Verdict {
		t.Helper()
		before := append([]byte(nil), b...)
		var v Verdict
		switch {
		case frag && dir == DirOut:
			v = other.OutboundFragment(b, sport, dport, 1000)
		case frag:
			v = other.InboundFragment(b, sport, dport, 1000)
		case dir == DirOut:
			v = other.Outbound(b, 1000)
		default:
			v = other.Inbound(b, 1000)
		}
		require.Equal(t, VerdictHandoff, v)
		require.Equal(t, before, b, "untouched")
		require.Equal(t, own, HandoffOwner(b, dir, frag, sport, dport, workers))
		switch {
		case frag && dir == DirOut:
			return trs[own].OutboundFragment(b, sport, dport, 1000)
		case frag:
			return trs[own].InboundFragment(b, sport, dport, 1000)
		case dir == DirOut:
			return trs[own].Outbound(b, 1000)
		}
		return trs[own].Inbound(b, 1000)
	}
	out := udp(memberA, server, 40000, 3478).build(t)
	require.Equal(t, VerdictForward, send(t, out, DirOut, false, 0, 0))
	v := parsed(t, out)
	pub, port := v.ip.Src(), v.sport
	assert.Equal(t, own, PortOwner(port, workers))
	in := udp(server2, pub, 9, port).build(t)
	require.Equal(t, VerdictForward, send(t, in, DirIn, false, 0, 0), "a stranger, let in on the owner")

	// An ICMP error from the outside about the outbound flow.
	sent := udp(pub, server, port, 3478).build(t)
	b := make([]byte, 256)
	n := BuildICMPError(b, router, pub, ICMPDestUnreachable, 3, 0, IPv4(sent), 64)
	require.Equal(t, VerdictForward, send(t, b[:n], DirIn, false, 0, 0))
	// And one from the member about the inbound flow.
	got := udp(server2, memberA, 9, 40000).build(t)
	n = BuildICMPError(b, memberA, server2, ICMPDestUnreachable, 3, 0, IPv4(got), 64)
	require.Equal(t, VerdictForward, send(t, b[:n], DirOut, false, 0, 0))

	// A later fragment each way, with its datagram's ports.
	frag := udp(memberA, server, 40000, 3478).build(t)
	laterFragment(frag)
	require.Equal(t, VerdictForward, send(t, frag, DirOut, true, 40000, 3478))
	frag = udp(server, pub, 3478, port).build(t)
	laterFragment(frag)
	require.Equal(t, VerdictForward, send(t, frag, DirIn, true, 3478, port))

	assert.Zero(t, other.Flows().Len())
	assert.Equal(t, 2, trs[own].Flows().Len())
}

// laterFragment makes a packet a later fragment (offset 16 bytes): the
// translator reads no ports from it.
func laterFragment(b []byte) {
	ip := IPv4(b)
	ip[6], ip[7] = 0, 2
	ip.SetChecksum(0)
	ip.SetChecksum(ip.ComputeChecksum())
}

// Hairpinning with endpoint-independent mapping, as the STUN tools test
// it (e2e TestE2ENATBehaviour): a socket's packet to its own public
// endpoint comes back to it under every filtering (it travels on one
// flow whose remote is that endpoint); a second socket's packet to it
// passes endpoint-independent filtering only, until the first socket has
// sent to natgw's public address (then address-dependent filtering lets
// that address in too, like any other).
func TestEIMHairpin(t *testing.T) {
	for _, tc := range []struct {
		mode   FilteringMode
		second Verdict
	}{
		{FilteringAddressPortDependent, DropNoFlow},
		{FilteringAddressDependent, DropNoFlow},
		{FilteringEndpointIndependent, VerdictForward},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			tr := newTestTranslator(t, compileSpec(t, eimSpec(0, tc.mode), nil), 1024)
			pub, port := outPort(t, tr, udp(memberA, server, 40000, 3478), 1000)
			// The second socket first: once the first socket has sent
			// to its own public address, address-dependent filtering
			// lets in anything from that address.
			out, in := hairpin(tr, udp(memberA, pub, 40001, port).build(t), 1000)
			require.Equal(t, VerdictHairpin, out)
			assert.Equal(t, tc.second, in, "from a second socket")

			self := udp(memberA, pub, 40000, port).build(t)
			out, in = hairpin(tr, self, 1000)
			require.Equal(t, VerdictHairpin, out)
			assert.Equal(t, VerdictForward, in, "to itself")
			v := parsed(t, self)
			assert.Equal(t, [4]any{pub, port, memberA, uint16(40000)}, [4]any{v.ip.Src(), v.sport, v.ip.Dst(), v.dport})
		})
	}
}

// TestEIMReloadNoAllocs: the worker's switch to the first policy with an
// endpoint-independent scope allocates nothing: the management core made
// the mapping table (and the policy's counters) when it published the
// policy (PolicyHolder.Store to a holder the translator is attached to),
// and the worker only takes them. The table then serves the new flows.
func TestEIMReloadNoAllocs(t *testing.T) {
	var h PolicyHolder
	h.Store(compileSpec(t, testSpec(0), nil))
	tr := NewTranslator(h.Load(), TranslatorOptions{FlowCapacity: 1 << 16}, 1000)
	h.Attach(tr)
	apd := compileSpec(t, testSpec(0), h.Load())
	h.Store(apd)
	eim := compileSpec(t, eimSpec(0, FilteringAddressPortDependent), apd)
	h.Store(eim)
	// AllocsPerRun's first call is not measured: it switches to apd, the
	// measured one to eim.
	next := []*Policy{apd, eim}
	allocs := testing.AllocsPerRun(1, func() {
		tr.SetPolicyAt(next[0], 2000)
		next = next[1:]
	})
	assert.Zero(t, allocs, "switching to the first endpoint-independent policy")
	require.Same(t, eim, tr.Policy())
	pub, port := outPort(t, tr, udp(memberA, server, 40000, 3478), 2000)
	p2, port2 := outPort(t, tr, udp(memberA, server2, 40000, 53), 2000)
	assert.Equal(t, [2]any{pub, port}, [2]any{p2, port2}, "one mapping towards both servers")
	assert.Equal(t, 1, tr.Mappings())
}
