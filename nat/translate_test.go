package nat

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	memberA  = ip4("10.0.1.4")
	memberB  = ip4("10.0.1.5")
	instPriv = ip4("10.0.3.7")
	instPub  = ip4("198.19.1.50")
	fe1      = ip4("198.19.1.10")
	feDef    = ip4("198.19.1.20")
	dflt     = ip4("10.0.9.9")
	server   = ip4("198.18.0.10")
	server2  = ip4("198.18.0.11")
	router   = ip4("198.18.0.1")
)

func ip4(s string) uint32 { return U32(netip.MustParseAddr(s)) }

// testSpec is the test policy: the SPEC §5 example with the test
// addresses of SPEC §8 and pool blocks of ppm ports (0: the tier's), with
// the configuration's defaults where the example leaves a key out (the
// timeouts, [limits], inside.source_check). mgmt's TestPolicySpecExample
// checks that the example's TOML converts to this.
func testSpec(ppm int) PolicySpec {
	return PolicySpec{
		Inside:      Prefix{Addr: ip4("10.0.0.1"), Bits: 16},
		Outside:     Prefix{Addr: ip4("198.19.0.2"), Bits: 24},
		Gateway:     ip4("198.19.0.1"),
		SourceCheck: true,
		Timeouts: Timeouts{
			TCPEstablished: TickFromDuration(4 * time.Minute),
			TCPTransitory:  TickFromDuration(30 * time.Second),
			TCPClosing:     TickFromDuration(10 * time.Second),
			UDP:            TickFromDuration(4 * time.Minute),
			ICMP:           TickFromDuration(60 * time.Second),
		},
		HostFlowPercent:    25,
		InboundFlowPercent: 50,
		Frontends:          []uint32{fe1, feDef},
		Pools: []PoolSpec{{Name: "web", Frontends: []uint32{fe1},
			Members: append([]uint32{memberA, memberB}, hostsOf("10.0.2.0", 16)...), PortsPerMember: ppm}},
		Instances: []InstanceSpec{{Private: instPriv, Public: instPub, Inbound: []PortRule{
			{Proto: ProtoTCP, Lo: 22, Hi: 22}, {Proto: ProtoTCP, Lo: 8000, Hi: 8100},
			{Proto: ProtoUDP, Lo: 0, Hi: 0xFFFF}, {Proto: ProtoICMP, Lo: 0, Hi: 0xFFFF}}}},
		DefaultSNAT: &DefaultSNATSpec{Sources: []Prefix{{Addr: ip4("10.0.0.0"), Bits: 8}},
			Frontends: []uint32{feDef}, PortsPerMember: 1024, Workers: 1},
		Deny: []DenyRule{{Destination: Prefix{Addr: ip4("198.18.99.0"), Bits: 24},
			PortRule: PortRule{Proto: ProtoTCP, Lo: 25, Hi: 25}}},
	}
}

// hostsOf returns the n consecutive addresses from first.
func hostsOf(first string, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = ip4(first) + uint32(i)
	}
	return out
}

// compileSpec compiles s against prev and fails the test on an error.
func compileSpec(t testing.TB, s PolicySpec, prev *Policy) *Policy {
	t.Helper()
	p, err := Compile(s, prev)
	require.NoError(t, err)
	return p
}

func testPolicy(t testing.TB, ppm int) *Policy {
	return compileSpec(t, testSpec(ppm), nil)
}

func newTestTranslator(t testing.TB, p *Policy, capacity int) *Translator {
	return NewTranslator(p, TranslatorOptions{FlowCapacity: capacity, Seed: 1}, 1000)
}

// pkt is a test packet description.
type pkt struct {
	proto          uint8
	src, dst       uint32
	sport, dport   uint16
	flags          uint8 // TCP flags
	icmpType       uint8
	payload        []byte
	ttl            uint8
	zeroUDPCsum    bool
	icmpID, icmpSq uint16
}

func (p pkt) build(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 2048)
	ttl := p.ttl
	if ttl == 0 {
		ttl = 64
	}
	var n int
	switch p.proto {
	case ProtoTCP:
		n = BuildTCP(b, TCPSegment{Src: p.src, Dst: p.dst, SrcPort: p.sport, DstPort: p.dport, Seq: 1000, Flags: p.flags, TTL: ttl, Payload: p.payload})
	case ProtoUDP:
		n = BuildUDP(b, p.src, p.dst, p.sport, p.dport, ttl, p.payload)
		if p.zeroUDPCsum {
			ip := IPv4(b[:n])
			UDP(ip.Payload()).SetChecksum(0)
		}
	case ProtoICMP:
		n = BuildICMPEcho(b, p.src, p.dst, p.icmpType, p.icmpID, p.icmpSq, ttl, p.payload)
	}
	require.NotZero(t, n)
	return b[:n]
}

func udp(src, dst uint32, sport, dport uint16) pkt {
	return pkt{proto: ProtoUDP, src: src, dst: dst, sport: sport, dport: dport, payload: []byte("hello")}
}

func tcp(src, dst uint32, sport, dport uint16, flags uint8) pkt {
	return pkt{proto: ProtoTCP, src: src, dst: dst, sport: sport, dport: dport, flags: flags}
}

// view parses a packet the test built or translated.
type view struct {
	ip           IPv4
	sport, dport uint16
}

func parsed(t testing.TB, b []byte) view {
	t.Helper()
	ip, ok := ParseIPv4(b)
	require.True(t, ok, "translated packet must parse (header checksum valid)")
	v := view{ip: ip}
	switch ip.Protocol() {
	case ProtoTCP:
		tc, ok := ParseTCP(ip.Payload())
		require.True(t, ok)
		v.sport, v.dport = tc.SrcPort(), tc.DstPort()
	case ProtoUDP:
		u, ok := ParseUDP(ip.Payload())
		require.True(t, ok)
		v.sport, v.dport = u.SrcPort(), u.DstPort()
	case ProtoICMP:
		ic, ok := ParseICMP(ip.Payload())
		require.True(t, ok)
		v.sport = ic.ID()
	}
	assertChecksums(t, ip)
	return v
}

// assertChecksums checks every checksum of a packet from scratch with the
// naive RFC 1071 oracle, including those of an ICMP error's quote.
func assertChecksums(t testing.TB, ip IPv4) {
	t.Helper()
	assert.Empty(t, checksumProblems(ip))
}

// checksumProblems lists the checksums of a packet that the naive oracle
// finds wrong.
func checksumProblems(ip IPv4) []string {
	var bad []string
	if foldedSum(ip[:ip.HeaderLen()]) != 0xFFFF {
		bad = append(bad, "IPv4 header checksum")
	}
	l4 := ip.Payload()
	switch ip.Protocol() {
	case ProtoTCP, ProtoUDP:
		if ip.Protocol() == ProtoUDP && len(l4) >= 8 && UDP(l4).Checksum() == 0 {
			break
		}
		ph := make([]byte, 12, 12+len(l4))
		binary.BigEndian.PutUint32(ph[0:], ip.Src())
		binary.BigEndian.PutUint32(ph[4:], ip.Dst())
		ph[9] = ip.Protocol()
		binary.BigEndian.PutUint16(ph[10:], uint16(len(l4)))
		if foldedSum(append(ph, l4...)) != 0xFFFF {
			bad = append(bad, "transport checksum")
		}
	case ProtoICMP:
		if foldedSum(l4) != 0xFFFF {
			bad = append(bad, "ICMP checksum")
		}
		if ic, ok := ParseICMP(l4); ok && IsICMPError(ic.Type()) {
			if emb, ok := ParseIPv4Embedded(ic.Payload()); ok && foldedSum(emb[:emb.HeaderLen()]) != 0xFFFF {
				bad = append(bad, "quoted IPv4 header checksum")
			}
		}
	}
	return bad
}

// foldedSum is the one's complement sum of b (RFC 1071), folded, not
// complemented: 0xFFFF for data with a valid checksum.
func foldedSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xFFFF {
		s = s&0xFFFF + s>>16
	}
	return uint16(s)
}

func reply(v view) pkt {
	p := pkt{proto: v.ip.Protocol(), src: v.ip.Dst(), dst: v.ip.Src(), sport: v.dport, dport: v.sport, payload: []byte("world")}
	if p.proto == ProtoTCP {
		p.flags = TCPFlagSYN | TCPFlagACK
	}
	return p
}

func TestScenarioPrecedence(t *testing.T) {
	p := testPolicy(t, 0)
	blockA, _ := p.Classify(memberA)
	tests := []struct {
		name      string
		pkt       pkt
		verdict   Verdict
		public    uint32
		portCheck func(t *testing.T, port uint16)
	}{
		{"instance is 1:1 and keeps the source port", udp(instPriv, server, 40000, 53), VerdictForward, instPub,
			func(t *testing.T, port uint16) { assert.Equal(t, uint16(40000), port) }},
		{"pool member uses its frontend and a port of its block", udp(memberA, server, 40000, 53), VerdictForward, fe1,
			func(t *testing.T, port uint16) {
				assert.True(t, blockA.Block.Contains(port), "port %d in %v", port, blockA.Block)
			}},
		{"prefix members are members", udp(ip4("10.0.2.7"), server, 40000, 53), VerdictForward, fe1, nil},
		{"other inside sources get default SNAT", udp(dflt, server, 40000, 53), VerdictForward, feDef, nil},
		{"no scenario outside default sources", udp(ip4("192.168.7.7"), server, 40000, 53), DropNoScenario, 0, nil},
		{"deny matches protocol and port", tcp(memberA, ip4("198.18.99.5"), 40000, 25, TCPFlagSYN), DropDenied, 0, nil},
		{"deny comes before instance", tcp(instPriv, ip4("198.18.99.5"), 40000, 25, TCPFlagSYN), DropDenied, 0, nil},
		{"deny leaves other ports", tcp(memberA, ip4("198.18.99.5"), 40000, 80, TCPFlagSYN), VerdictForward, fe1, nil},
		{"deny leaves other protocols", udp(memberA, ip4("198.18.99.5"), 40000, 25), VerdictForward, fe1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTranslator(t, p, 1024)
			b := tc.pkt.build(t)
			require.Equal(t, tc.verdict, tr.Outbound(b, 1000))
			if tc.verdict != VerdictForward {
				assert.Equal(t, uint64(1), tr.Stats.Verdicts[tc.verdict])
				return
			}
			v := parsed(t, b)
			assert.Equal(t, tc.public, v.ip.Src())
			assert.Equal(t, tc.pkt.dst, v.ip.Dst())
			assert.Equal(t, uint8(63), v.ip.TTL())
			if tc.portCheck != nil {
				tc.portCheck(t, v.sport)
			}
		})
	}
}

func TestMappingScenarios(t *testing.T) {
	p := testPolicy(t, 0)
	m, v := p.Classify(instPriv)
	require.Equal(t, VerdictForward, v)
	assert.Equal(t, ScenarioInstance, m.Scenario, "instance takes precedence over default SNAT")
	m, _ = p.Classify(memberB)
	assert.Equal(t, ScenarioPool, m.Scenario)
	assert.Equal(t, 1024, m.Block.Size(), "18 members: 1024 ports each")
	_, v = p.Classify(ip4("172.16.0.1"))
	assert.Equal(t, DropNoScenario, v)
}

// [S2]: one port per destination; 1024 flows to one destination, the
// 1025th refused while another destination still gets a port.
func TestPortPerDestination(t *testing.T) {
	p := testPolicy(t, 0)
	tr := newTestTranslator(t, p, 8192)
	m, _ := p.Classify(memberA)
	seen := map[uint16]bool{}
	var order []uint16
	for i := 0; i < 1024; i++ {
		b := udp(memberA, server, uint16(20000+i), 53).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 1000), "flow %d", i)
		v := parsed(t, b)
		require.True(t, m.Block.Contains(v.sport))
		require.False(t, seen[v.sport], "port %d handed out twice to one destination", v.sport)
		seen[v.sport] = true
		order = append(order, v.sport)
	}
	b := udp(memberA, server, 30000, 53).build(t)
	assert.Equal(t, DropPortExhausted, tr.Outbound(b, 1000), "1025th flow to one destination")
	assert.Equal(t, uint64(1), tr.Stats.Exhausted[0], "counted for pool web")

	// Another destination (address, or port) still gets a port.
	b = udp(memberA, server2, 30000, 53).build(t)
	assert.Equal(t, VerdictForward, tr.Outbound(b, 1000))
	b = udp(memberA, server, 30001, 54).build(t)
	assert.Equal(t, VerdictForward, tr.Outbound(b, 1000))

	// Random, not sequential.
	sequential := 0
	for i := 1; i < 64; i++ {
		if order[i] == order[i-1]+1 {
			sequential++
		}
	}
	assert.Less(t, sequential, 8, "ports are chosen at random: %v", order[:16])
}

func TestSamePortReusedAcrossDestinations(t *testing.T) {
	p := testPolicy(t, 8)
	tr := newTestTranslator(t, p, 1024)
	ports := func(dst uint32) map[uint16]bool {
		got := map[uint16]bool{}
		for i := 0; i < 8; i++ {
			b := tcp(memberA, dst, uint16(30000+i), 443, TCPFlagSYN).build(t)
			require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
			got[parsed(t, b).sport] = true
		}
		return got
	}
	a, b := ports(server), ports(server2)
	assert.Len(t, a, 8)
	assert.Equal(t, a, b, "a block of 8 holds 8 flows to each destination, on the same ports")
	assert.Equal(t, 16, tr.Flows().Len())
	extra := tcp(memberA, server, 31000, 443, TCPFlagSYN).build(t)
	assert.Equal(t, DropPortExhausted, tr.Outbound(extra, 1000))
}

// [S4]: exhaustion drops new flows only; existing flows carry on, and the
// event names member and destination.
func TestExhaustionLeavesExistingFlows(t *testing.T) {
	p := testPolicy(t, 8)
	var events []ExhaustEvent
	tr := NewTranslator(p, TranslatorOptions{FlowCapacity: 1024, Seed: 7,
		OnExhausted: func(e ExhaustEvent) { events = append(events, e) }}, 1000)
	var first view
	for i := 0; i < 8; i++ {
		b := udp(memberA, server, uint16(30000+i), 53).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
		if i == 0 {
			first = parsed(t, b)
		}
	}
	b := udp(memberA, server, 31000, 53).build(t)
	require.Equal(t, DropPortExhausted, tr.Outbound(b, 1000))
	require.Len(t, events, 1)
	assert.Equal(t, ExhaustEvent{Private: memberA, Remote: server, RemotePort: 53, Proto: ProtoUDP, Scope: 0}, events[0])

	out := udp(memberA, server, 30000, 53).build(t)
	assert.Equal(t, VerdictForward, tr.Outbound(out, 1001))
	assert.Equal(t, first.sport, parsed(t, out).sport, "existing flow keeps its port")
	in := reply(first).build(t)
	assert.Equal(t, VerdictForward, tr.Inbound(in, 1001))
	// Another member of the same pool is not affected.
	b = udp(memberB, server, 31000, 53).build(t)
	assert.Equal(t, VerdictForward, tr.Outbound(b, 1001))
}

// [S6]: return traffic is translated back; unsolicited traffic dropped;
// instance inbound rules open flows.
func TestReturnTraffic(t *testing.T) {
	p := testPolicy(t, 0)
	for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
		t.Run(fmt.Sprint("proto ", proto), func(t *testing.T) {
			tr := newTestTranslator(t, p, 1024)
			orig := pkt{proto: proto, src: memberA, dst: server, sport: 41000, dport: 80, flags: TCPFlagSYN, payload: []byte("x")}
			b := orig.build(t)
			require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
			out := parsed(t, b)
			rb := reply(out).build(t)
			require.Equal(t, VerdictForward, tr.Inbound(rb, 1001))
			back := parsed(t, rb)
			assert.Equal(t, memberA, back.ip.Dst())
			assert.Equal(t, uint16(41000), back.dport)
			assert.Equal(t, server, back.ip.Src())
			assert.Equal(t, uint16(80), back.sport)
		})
	}
	t.Run("zero UDP checksum stays zero", func(t *testing.T) {
		tr := newTestTranslator(t, p, 1024)
		o := udp(memberA, server, 41000, 53)
		o.zeroUDPCsum = true
		b := o.build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
		assert.Equal(t, uint16(0), UDP(parsed(t, b).ip.Payload()).Checksum())
	})
	unsolicited := []struct {
		name string
		pkt  pkt
		want Verdict
	}{
		{"to a frontend", udp(server, fe1, 53, 1500), DropNoFlow},
		{"tcp to an instance port not allowed", tcp(server, instPub, 40000, 23, TCPFlagSYN), DropNoFlow},
		{"tcp ACK to an allowed port opens nothing", tcp(server, instPub, 40000, 22, TCPFlagACK), DropNoFlow},
		{"echo request to a frontend is natgw's", pkt{proto: ProtoICMP, src: server, dst: fe1, icmpType: ICMPEchoRequest, icmpID: 9}, VerdictLocal},
		{"echo request to natgw's outside address", pkt{proto: ProtoICMP, src: server, dst: ip4("198.19.0.2"), icmpType: ICMPEchoRequest, icmpID: 9}, VerdictLocal},
	}
	for _, tc := range unsolicited {
		t.Run("unsolicited "+tc.name, func(t *testing.T) {
			tr := newTestTranslator(t, p, 1024)
			assert.Equal(t, tc.want, tr.Inbound(tc.pkt.build(t), 1000))
			assert.Zero(t, tr.Flows().Len())
		})
	}
	allowed := []pkt{
		tcp(server, instPub, 40000, 22, TCPFlagSYN),
		tcp(server, instPub, 40000, 8050, TCPFlagSYN),
		udp(server, instPub, 40000, 5353),
		{proto: ProtoICMP, src: server, dst: instPub, icmpType: ICMPEchoRequest, icmpID: 77, icmpSq: 1},
	}
	for _, in := range allowed {
		t.Run(fmt.Sprintf("instance inbound %d/%d", in.proto, in.dport), func(t *testing.T) {
			tr := newTestTranslator(t, p, 1024)
			b := in.build(t)
			require.Equal(t, VerdictForward, tr.Inbound(b, 1000))
			v := parsed(t, b)
			assert.Equal(t, instPriv, v.ip.Dst())
			// The instance's answer goes back out from its public address.
			var ans pkt
			if in.proto == ProtoICMP {
				ans = pkt{proto: ProtoICMP, src: instPriv, dst: server, icmpType: ICMPEchoReply, icmpID: 77, icmpSq: 1}
			} else {
				ans = reply(v)
			}
			ab := ans.build(t)
			require.Equal(t, VerdictForward, tr.Outbound(ab, 1001))
			av := parsed(t, ab)
			assert.Equal(t, instPub, av.ip.Src())
			want := in.dport
			if in.proto == ProtoICMP {
				want = in.icmpID
			}
			assert.Equal(t, want, av.sport)
		})
	}
}

// [S5]: TCP close and idle timeouts release ports.
func TestRelease(t *testing.T) {
	p := testPolicy(t, 8)
	const sec = Tick(1000)
	open := func(t *testing.T, tr *Translator, sport uint16) view {
		b := tcp(memberA, server, sport, 80, TCPFlagSYN).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
		v := parsed(t, b)
		sa := reply(v).build(t)
		require.Equal(t, VerdictForward, tr.Inbound(sa, 1000))
		return v
	}
	fill := func(t *testing.T, tr *Translator, now Tick) Verdict {
		return tr.Outbound(tcp(memberA, server, 50000, 80, TCPFlagSYN).build(t), now)
	}
	tests := []struct {
		name   string
		close  func(t *testing.T, tr *Translator, v view)
		after  Tick
		reason ExpireReason
	}{
		{"FINs both ways linger tcp_closing", func(t *testing.T, tr *Translator, v view) {
			require.Equal(t, VerdictForward, tr.Outbound(tcp(memberA, server, 30000, 80, TCPFlagFIN|TCPFlagACK).build(t), 2000))
			fin := reply(v)
			fin.flags = TCPFlagFIN | TCPFlagACK
			require.Equal(t, VerdictForward, tr.Inbound(fin.build(t), 2000))
		}, 2000 + 10*sec, ExpireClosed},
		{"RST lingers tcp_closing", func(t *testing.T, tr *Translator, v view) {
			rst := reply(v)
			rst.flags = TCPFlagRST
			require.Equal(t, VerdictForward, tr.Inbound(rst.build(t), 2000))
		}, 2000 + 10*sec, ExpireReset},
		{"established idles out after tcp_established", func(*testing.T, *Translator, view) {}, 1000 + 240*sec, ExpireIdle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTranslator(t, p, 1024)
			var v view
			for i := 0; i < 8; i++ {
				got := open(t, tr, uint16(30000+i))
				if i == 0 {
					v = got
				}
			}
			require.Equal(t, DropPortExhausted, fill(t, tr, 1500))
			tc.close(t, tr, v)
			// One slot before the deadline nothing is released.
			tr.Expire(tc.after-200, 1<<20)
			assert.Equal(t, 8, tr.Flows().Len())
			tr.Expire(tc.after+200, 1<<20)
			if tc.reason == ExpireIdle {
				assert.Equal(t, 0, tr.Flows().Len(), "all idle flows expire")
			} else {
				assert.Equal(t, 7, tr.Flows().Len())
			}
			assert.Equal(t, uint64(8-tr.Flows().Len()), tr.Stats.FlowsExpired[tc.reason])
			assert.Equal(t, VerdictForward, fill(t, tr, tc.after+300), "the released port is free again")
		})
	}
	t.Run("keepalives in either direction keep a flow", func(t *testing.T) {
		tr := newTestTranslator(t, p, 1024)
		v := open(t, tr, 30000)
		now := Tick(1000)
		for i := 0; i < 5; i++ {
			now += 200 * sec
			ka := reply(v)
			ka.flags = TCPFlagACK
			require.Equal(t, VerdictForward, tr.Inbound(ka.build(t), now))
			tr.Expire(now, 1<<20)
		}
		assert.Equal(t, 1, tr.Flows().Len())
	})
	t.Run("half-open flows use tcp_transitory, udp and icmp their own", func(t *testing.T) {
		tr := newTestTranslator(t, p, 1024)
		require.Equal(t, VerdictForward, tr.Outbound(tcp(memberA, server, 30000, 80, TCPFlagSYN).build(t), 1000))
		require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 30000, 53).build(t), 1000))
		require.Equal(t, VerdictForward, tr.Outbound(pkt{proto: ProtoICMP, src: memberA, dst: server, icmpType: ICMPEchoRequest, icmpID: 5}.build(t), 1000))
		tr.Expire(1000+30*sec+200, 1<<20)
		assert.Equal(t, 2, tr.Flows().Len(), "SYN without answer gone after 30 s")
		tr.Expire(1000+60*sec+200, 1<<20)
		assert.Equal(t, 1, tr.Flows().Len(), "echo gone after 60 s")
		tr.Expire(1000+240*sec+200, 1<<20)
		assert.Equal(t, 0, tr.Flows().Len(), "udp gone after 4 min")
	})
}

// [S7]: a 51st member halves every block; flows on reclaimed ports expire,
// the rest survive; members whose block is unchanged keep all flows.
func TestReloadReclaims(t *testing.T) {
	cfg := func(n int) PolicySpec {
		s := testSpec(0)
		s.Pools[0].Members = hostsOf("10.0.4.1", n)
		fe2 := ip4("198.19.1.11")
		s.Frontends = append(s.Frontends, fe2)
		s.Pools = append(s.Pools, PoolSpec{Name: "other", Frontends: []uint32{fe2}, Members: []uint32{memberA}})
		return s
	}
	p50 := compileSpec(t, cfg(50), nil)
	tr := newTestTranslator(t, p50, 1<<16)
	m0 := ip4("10.0.4.1")
	before, _ := p50.Classify(m0)
	require.Equal(t, 1024, before.Block.Size())
	// 200 flows from member 0 to one destination: about half land in the
	// upper half of its block.
	kept, lost := 0, 0
	for i := 0; i < 200; i++ {
		b := udp(m0, server, uint16(20000+i), 53).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
		if parsed(t, b).sport < before.Block.First+512 {
			kept++
		} else {
			lost++
		}
	}
	require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 20000, 53).build(t), 1000))
	require.NotZero(t, lost)

	p51 := compileSpec(t, cfg(51), p50)
	assert.Equal(t, []netip.Addr(nil), filterAddr(p51.ChangedMembers(p50), "10.0.1.4"), "the other pool's member is unchanged")
	assert.Len(t, p51.ChangedMembers(p50), 50, "every member of the grown pool changed block")
	after, _ := p51.Classify(m0)
	assert.Equal(t, 512, after.Block.Size())
	assert.Equal(t, before.Block.First, after.Block.First, "the member keeps the first half")

	tr.SetPolicy(p51)
	for !tr.Sweep(4096) {
	}
	assert.Equal(t, uint64(lost), tr.Stats.FlowsExpired[ExpireReclaimed])
	assert.Equal(t, kept+1, tr.Flows().Len())
	// The unchanged member's flow still translates; so do kept flows.
	assert.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 20000, 53).build(t), 2000))
	assert.Equal(t, uint64(lost), tr.Stats.FlowsExpired[ExpireReclaimed], "no further reclaims")

	// A pool that shrinks back grows blocks; existing flows are untouched.
	p50b := compileSpec(t, cfg(50), p51)
	tr.SetPolicy(p50b)
	for !tr.Sweep(4096) {
	}
	assert.Equal(t, kept+1, tr.Flows().Len())
}

func filterAddr(a []netip.Addr, s string) []netip.Addr {
	var out []netip.Addr
	for _, x := range a {
		if x.String() == s {
			out = append(out, x)
		}
	}
	return out
}

// [S8]: echo and ICMP errors through the NAT.
func TestICMP(t *testing.T) {
	p := testPolicy(t, 0)
	t.Run("echo request and reply use the id as port", func(t *testing.T) {
		tr := newTestTranslator(t, p, 1024)
		b := pkt{proto: ProtoICMP, src: memberA, dst: server, icmpType: ICMPEchoRequest, icmpID: 4242, icmpSq: 1, payload: []byte("ping")}.build(t)
		require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
		out := parsed(t, b)
		m, _ := p.Classify(memberA)
		assert.True(t, m.Block.Contains(out.sport))
		rb := pkt{proto: ProtoICMP, src: server, dst: fe1, icmpType: ICMPEchoReply, icmpID: out.sport, icmpSq: 1, payload: []byte("ping")}.build(t)
		require.Equal(t, VerdictForward, tr.Inbound(rb, 1001))
		back := parsed(t, rb)
		assert.Equal(t, memberA, back.ip.Dst())
		assert.Equal(t, uint16(4242), back.sport)
	})
	errorsIn := []struct {
		name       string
		orig       pkt
		typ, code  uint8
		mtu        uint16
		quoteBytes int // 0: as much as BuildICMPError quotes
	}{
		{"time exceeded about udp", udp(memberA, server, 41000, 33434), ICMPTimeExceeded, 0, 0, 0},
		{"frag needed about tcp", tcp(memberA, server, 41001, 80, TCPFlagACK), ICMPDestUnreachable, ICMPCodeFragNeeded, 1400, 0},
		{"port unreachable about udp, 8-byte quote", udp(memberA, server, 41002, 9), ICMPDestUnreachable, 3, 0, 28},
		{"time exceeded about tcp, 8-byte quote", tcp(memberA, server, 41003, 80, TCPFlagSYN), ICMPTimeExceeded, 0, 0, 28},
		{"time exceeded about an echo", pkt{proto: ProtoICMP, src: memberA, dst: server, icmpType: ICMPEchoRequest, icmpID: 99}, ICMPTimeExceeded, 0, 0, 0},
		{"about an instance flow", udp(instPriv, server, 41004, 53), ICMPTimeExceeded, 0, 0, 0},
	}
	for _, tc := range errorsIn {
		t.Run("inbound "+tc.name, func(t *testing.T) {
			tr := newTestTranslator(t, p, 1024)
			orig := tc.orig.build(t)
			sent := append([]byte(nil), orig...)
			require.Equal(t, VerdictForward, tr.Outbound(sent, 1000))
			sentIP, _ := ParseIPv4(sent)
			if tc.quoteBytes != 0 {
				sentIP = sentIP[:tc.quoteBytes]
			}
			eb := make([]byte, 1024)
			n := BuildICMPError(eb, router, sentIP.Src(), tc.typ, tc.code, tc.mtu, sentIP, 64)
			require.NotZero(t, n)
			eb = eb[:n]
			require.Equal(t, VerdictForward, tr.Inbound(eb, 1001))
			ev := parsed(t, eb)
			assert.Equal(t, tc.orig.src, ev.ip.Dst(), "delivered to the private host")
			assert.Equal(t, router, ev.ip.Src())
			ic := ICMP(ev.ip.Payload())
			assert.Equal(t, tc.typ, ic.Type())
			assert.Equal(t, tc.mtu, ic.MTU())
			emb, ok := ParseIPv4Embedded(ic.Payload())
			require.True(t, ok)
			origIP, _ := ParseIPv4(orig)
			assert.Equal(t, origIP.Src(), emb.Src(), "quote's source is the private address again")
			assert.Equal(t, origIP.Dst(), emb.Dst())
			assert.Equal(t, []byte(origIP[20:24]), emb.Payload()[0:4], "quote's ports (or echo id) are the private ones again")
			if tc.quoteBytes == 0 && tc.orig.proto != ProtoICMP {
				// The whole original fits: the quoted transport checksum
				// must be the original's again.
				assert.Equal(t, []byte(origIP[20:]), []byte(emb.Payload()[:len(origIP)-20]))
			}
		})
	}
	t.Run("outbound port unreachable about an inbound instance flow", func(t *testing.T) {
		tr := newTestTranslator(t, p, 1024)
		in := udp(server, instPub, 5000, 6000).build(t)
		require.Equal(t, VerdictForward, tr.Inbound(in, 1000))
		delivered, _ := ParseIPv4(in)
		eb := make([]byte, 1024)
		n := BuildICMPError(eb, instPriv, server, ICMPDestUnreachable, 3, 0, delivered, 64)
		eb = eb[:n]
		require.Equal(t, VerdictForward, tr.Outbound(eb, 1001))
		ev := parsed(t, eb)
		assert.Equal(t, instPub, ev.ip.Src())
		emb, _ := ParseIPv4Embedded(ICMP(ev.ip.Payload()).Payload())
		assert.Equal(t, instPub, emb.Dst())
	})
	t.Run("errors about unknown flows are dropped", func(t *testing.T) {
		tr := newTestTranslator(t, p, 1024)
		ghost := udp(fe1, server, 2000, 53).build(t)
		gip, _ := ParseIPv4(ghost)
		eb := make([]byte, 1024)
		n := BuildICMPError(eb, router, fe1, ICMPTimeExceeded, 0, 0, gip, 64)
		assert.Equal(t, DropNoFlow, tr.Inbound(eb[:n], 1000))
	})
}

func TestMalformedAndUnsupported(t *testing.T) {
	p := testPolicy(t, 0)
	tr := newTestTranslator(t, p, 1024)
	good := udp(memberA, server, 1000, 53).build(t)
	ttl1 := udp(memberA, server, 1000, 53)
	ttl1.ttl = 1
	frag := udp(memberA, server, 1000, 53).build(t)
	IPv4(frag)[6] = 0x00
	IPv4(frag)[7] = 0x10 // offset 128 bytes
	IPv4(frag).SetChecksum(0)
	IPv4(frag).SetChecksum(IPv4(frag).ComputeChecksum())
	gre := append([]byte(nil), good...)
	gre[9] = 47
	IPv4(gre).SetChecksum(0)
	IPv4(gre).SetChecksum(IPv4(gre).ComputeChecksum())
	tests := []struct {
		name string
		b    []byte
		want Verdict
	}{
		{"empty", nil, DropMalformed},
		{"truncated header", good[:12], DropMalformed},
		{"truncated udp", good[:24], DropMalformed},
		{"bad header checksum", append([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0}, good[12:28]...), DropMalformed},
		{"ttl 1", ttl1.build(t), DropTTLExceeded},
		{"later fragment", frag, DropFragment},
		{"gre", gre, DropUnsupported},
		{"to natgw itself", udp(memberA, ip4("10.0.0.1"), 1000, 53).build(t), VerdictLocal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tr.Outbound(tc.b, 1000))
		})
	}
}

func TestNoAllocsEstablished(t *testing.T) {
	p := testPolicy(t, 0)
	tr := newTestTranslator(t, p, 1024)
	out := udp(memberA, server, 40000, 53).build(t)
	require.Equal(t, VerdictForward, tr.Outbound(append([]byte(nil), out...), 1000))
	work := make([]byte, len(out))
	copy(work, out)
	require.Equal(t, VerdictForward, tr.Outbound(work, 1000))
	in := reply(parsed(t, work)).build(t)
	inWork := make([]byte, len(in))
	allocs := testing.AllocsPerRun(1000, func() {
		copy(work, out)
		tr.Outbound(work, 1000)
		copy(inWork, in)
		tr.Inbound(inWork, 1000)
	})
	assert.Zero(t, allocs)
	pkts := [][]byte{work, inWork}
	verdicts := make([]Verdict, 2)
	allocs = testing.AllocsPerRun(1000, func() {
		copy(work, out)
		tr.OutboundBurst(pkts[:1], verdicts, 1000)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, VerdictForward, verdicts[0])
}

func TestTimeoutsFromConfig(t *testing.T) {
	p := testPolicy(t, 0)
	assert.Equal(t, TickFromDuration(4*time.Minute), p.Timeouts.UDP)
	assert.Equal(t, TickFromDuration(10*time.Second), p.Timeouts.TCPClosing)
}

// [S5] tcp_reset_on_idle: an established TCP flow that idles out is handed
// over for resetting with the sequence number each end expects next.
func TestResetOnIdle(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		t.Run(fmt.Sprint("enabled=", enabled), func(t *testing.T) {
			s := testSpec(0)
			s.ResetOnIdle = enabled
			tr := newTestTranslator(t, compileSpec(t, s, nil), 1024)
			syn := pkt{proto: ProtoTCP, src: memberA, dst: server, sport: 41000, dport: 80, flags: TCPFlagSYN}.build(t)
			require.Equal(t, VerdictForward, tr.Outbound(syn, 1000))
			out := parsed(t, syn)
			// SYN-ACK from the server acknowledging 1001, then the client's
			// ACK acknowledging 5001.
			sa := make([]byte, 128)
			n := BuildTCP(sa, TCPSegment{Src: server, Dst: fe1, SrcPort: 80, DstPort: out.sport, Seq: 5000, Ack: 1001, Flags: TCPFlagSYN | TCPFlagACK, TTL: 64})
			require.Equal(t, VerdictForward, tr.Inbound(sa[:n], 1000))
			ack := make([]byte, 128)
			n = BuildTCP(ack, TCPSegment{Src: memberA, Dst: server, SrcPort: 41000, DstPort: 80, Seq: 1001, Ack: 5001, Flags: TCPFlagACK, TTL: 64})
			require.Equal(t, VerdictForward, tr.Outbound(ack[:n], 1001))

			// A UDP flow idling out is never reset.
			require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 41000, 53).build(t), 1001))
			tr.Expire(1001+TickFromDuration(5*time.Minute), 1<<20)
			resets := tr.TakeResets()
			if !enabled {
				assert.Empty(t, resets)
				return
			}
			require.Len(t, resets, 1)
			f := resets[0]
			assert.Equal(t, uint32(5001), f.AckPriv, "the client expects 5001 next")
			assert.Equal(t, uint32(1001), f.AckRemote, "the server expects 1001 next")
			assert.Equal(t, out.sport, f.PubPort)
			assert.Empty(t, tr.TakeResets(), "taken once")
		})
	}
}

// [S2][S4] through the burst path, where new flows try a port drawn ahead
// of time (prepareNew): 1024 flows from one member to one destination in
// bursts of 32 get 1024 distinct ports of the member's block, the 1025th
// is refused, and another destination still gets a port. Default SNAT
// sources take the same path.
func TestPortPerDestinationBurst(t *testing.T) {
	for _, src := range []uint32{memberA, ip4("10.9.0.5")} {
		t.Run(AddrFrom(src).String(), func(t *testing.T) {
			p := testPolicy(t, 0)
			tr := newTestTranslator(t, p, 8192)
			seen := map[uint16]bool{}
			verdicts := make([]Verdict, 32)
			for i := 0; i < 1024; i += 32 {
				pkts := make([][]byte, 32)
				for j := range pkts {
					pkts[j] = udp(src, server, uint16(20000+i+j), 53).build(t)
				}
				tr.OutboundBurst(pkts, verdicts, 1000)
				for j, b := range pkts {
					require.Equal(t, VerdictForward, verdicts[j], "flow %d", i+j)
					port := parsed(t, b).sport
					require.False(t, seen[port], "port %d handed out twice to one destination", port)
					seen[port] = true
				}
			}
			m, v := p.Classify(src)
			require.Equal(t, VerdictForward, v)
			if m.Scenario == ScenarioDefault {
				b, ok := p.DefaultSNAT().Lookup(src)
				require.True(t, ok)
				m.Block = b
			}
			for port := range seen {
				require.True(t, m.Block.Contains(port), "port %d outside %v", port, m.Block)
			}
			pkts := [][]byte{
				udp(src, server, 30000, 53).build(t),
				udp(src, server2, 30000, 53).build(t),
			}
			tr.OutboundBurst(pkts, verdicts, 1000)
			assert.Equal(t, DropPortExhausted, verdicts[0], "1025th flow to one destination")
			assert.Equal(t, VerdictForward, verdicts[1], "another destination")
		})
	}
}
