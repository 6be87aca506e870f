package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMartianDestinations checks that new outbound flows to destinations
// that must never be translated are dropped as martian, before any flow
// or port is taken, for every scenario and protocol; and that ordinary
// destinations next to them still translate. Before the check, every one
// of them was translated and sent to the gateway.
func TestMartianDestinations(t *testing.T) {
	martians := []string{
		"255.255.255.255",              // limited broadcast
		"10.0.255.255",                 // directed broadcast of the inside 10.0.0.0/16
		"198.19.0.255",                 // directed broadcast of the outside 198.19.0.0/24
		"224.0.0.1", "239.255.255.250", // multicast
		"127.0.0.1", "127.255.255.254", // loopback
		"0.0.0.0", "0.1.2.3", // this network
		"169.254.0.1", "169.254.169.254", // link-local (cloud metadata)
		"240.0.0.1", "254.255.255.255", // reserved
		"10.0.3.7", "10.0.255.254", "10.0.0.0", // the inside network itself (natgw's own 10.0.0.1 is never translated either)
	}
	ordinary := []string{"198.18.0.10", "198.19.0.1", "198.19.0.254", "10.1.0.1", "223.255.255.255", "1.1.1.1", "169.253.255.255", "128.0.0.1"}
	sources := []uint32{memberA, instPriv, dflt}
	for _, d := range martians {
		for _, src := range sources {
			for _, mk := range []func(dst uint32) pkt{
				func(dst uint32) pkt { return udp(src, dst, 40000, 53) },
				func(dst uint32) pkt { return tcp(src, dst, 40000, 80, TCPFlagSYN) },
				func(dst uint32) pkt {
					return pkt{proto: ProtoICMP, src: src, dst: dst, icmpType: ICMPEchoRequest, icmpID: 7, icmpSq: 1}
				},
			} {
				tr := newTestTranslator(t, testPolicy(t, 0), 1024)
				p := mk(ip4(d))
				v := tr.Outbound(p.build(t), 1000)
				assert.Equal(t, DropMartian, v, "%v from %s to %s", p.proto, AddrFrom(src), d)
				assert.Zero(t, tr.Flows().Len(), "no flow to %s", d)
				assert.Equal(t, uint64(1), tr.Stats.Verdicts[DropMartian])
			}
		}
	}
	tr := newTestTranslator(t, testPolicy(t, 0), 1024)
	for i, d := range ordinary {
		v := tr.Outbound(udp(memberA, ip4(d), uint16(40000+i), 53).build(t), 1000)
		assert.Equal(t, VerdictForward, v, "to %s", d)
	}
	assert.Zero(t, tr.Stats.Verdicts[DropMartian])
}

// TestMartianOutsidePointToPoint checks that a /31 outside link (RFC 3021)
// has no directed broadcast: both its addresses are ordinary.
func TestMartianOutsidePointToPoint(t *testing.T) {
	p := testPolicy(t, 0)
	require.True(t, p.OutsidePrefix.IsValid())
	assert.True(t, p.Martian(ip4("198.19.0.255")), "/24")
	for _, bits := range []int{31, 32} {
		q := *p
		pref, err := p.OutsidePrefix.Addr().Prefix(bits)
		require.NoError(t, err)
		q.OutsidePrefix = pref
		assert.False(t, q.Martian(ip4("198.19.0.3")), "/%d", bits)
		assert.False(t, q.Martian(ip4("198.19.0.2")), "/%d", bits)
	}
}

// TestMartianInboundSources checks that a packet from the outside with a
// martian source address opens no flow to an instance: else the
// instance's answers, packets of an established flow that the new-flow
// check never sees, would be translated and sent to the internet towards
// that martian address (issue 14 item 1). Ordinary sources next to the
// martians still open flows.
func TestMartianInboundSources(t *testing.T) {
	p := testPolicy(t, 0)
	for _, s := range []string{"127.0.0.1", "0.0.0.0", "169.254.169.254", "224.0.0.1", "240.0.0.1",
		"255.255.255.255", "10.0.255.255", "10.0.3.9", "198.19.0.255"} {
		src := ip4(s)
		for _, in := range []pkt{
			tcp(src, instPub, 40000, 22, TCPFlagSYN),
			udp(src, instPub, 40000, 5353),
			{proto: ProtoICMP, src: src, dst: instPub, icmpType: ICMPEchoRequest, icmpID: 77, icmpSq: 1},
		} {
			tr := newTestTranslator(t, p, 1024)
			assert.Equal(t, DropMartian, tr.Inbound(in.build(t), 1000), "%v from %s", in.proto, s)
			assert.Zero(t, tr.Flows().Len(), "no flow from %s", s)
			// The instance's answer is a new flow to a martian.
			ans := udp(instPriv, src, 5353, 40000)
			assert.Equal(t, DropMartian, tr.Outbound(ans.build(t), 1001), "answer to %s", s)
		}
	}
	tr := newTestTranslator(t, p, 1024)
	for i, s := range []string{"198.19.0.254", "10.1.0.1", "223.255.255.255", "126.0.0.1"} {
		assert.Equal(t, VerdictForward, tr.Inbound(udp(ip4(s), instPub, uint16(40000+i), 5353).build(t), 1000), "from %s", s)
	}
	assert.Zero(t, tr.Stats.Verdicts[DropMartian])
}
