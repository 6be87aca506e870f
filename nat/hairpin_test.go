package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hairpin runs a packet from the inside through the translator as the
// runtime does with a hairpin flow's packets: outbound, then (on
// VerdictHairpin) inbound, as if it came from the outside. It returns the
// outbound verdict and the inbound one (VerdictForward when the outbound
// verdict was not VerdictHairpin).
func hairpin(tr *Translator, b []byte, now Tick) (out, in Verdict) {
	out = tr.Outbound(b, now)
	if out != VerdictHairpin {
		return out, VerdictForward
	}
	return out, tr.Inbound(b, now)
}

// TestHairpinPoolToInstance: a pool member reaches an instance's public
// address and inbound-allowed port, seen from the pool's frontend, and the
// instance's reply comes back to it the same way (RFC 4787 REQ-9, RFC 5382
// REQ-8), both inside natgw.
func TestHairpinPoolToInstance(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 1024), 1024)
	b := tcp(memberA, instPub, 40000, 22, TCPFlagSYN).build(t)
	out, in := hairpin(tr, b, 1000)
	require.Equal(t, VerdictHairpin, out)
	require.Equal(t, VerdictForward, in)
	v := parsed(t, b)
	assert.Equal(t, fe1, v.ip.Src(), "the sender's own public address")
	assert.Equal(t, instPriv, v.ip.Dst())
	assert.Equal(t, uint16(22), v.dport)
	pa := v.sport
	m, _ := tr.Policy().Classify(memberA)
	assert.True(t, m.Block.Contains(pa), "the sender's own public port")

	reply := tcp(instPriv, fe1, 22, pa, TCPFlagSYN|TCPFlagACK).build(t)
	out, in = hairpin(tr, reply, 1001)
	require.Equal(t, VerdictHairpin, out)
	require.Equal(t, VerdictForward, in)
	v = parsed(t, reply)
	assert.Equal(t, instPub, v.ip.Src())
	assert.Equal(t, uint16(22), v.sport)
	assert.Equal(t, memberA, v.ip.Dst())
	assert.Equal(t, uint16(40000), v.dport)
}

// TestHairpinDefaultToInstance: the same from a default-SNAT host over UDP.
func TestHairpinDefaultToInstance(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 1024), 1024)
	b := udp(dflt, instPub, 5000, 5353).build(t)
	out, in := hairpin(tr, b, 1000)
	require.Equal(t, VerdictHairpin, out)
	require.Equal(t, VerdictForward, in)
	v := parsed(t, b)
	assert.Equal(t, feDef, v.ip.Src())
	assert.Equal(t, instPriv, v.ip.Dst())
	pd := v.sport

	reply := udp(instPriv, feDef, 5353, pd).build(t)
	out, in = hairpin(tr, reply, 1001)
	require.Equal(t, VerdictHairpin, out)
	require.Equal(t, VerdictForward, in)
	v = parsed(t, reply)
	assert.Equal(t, instPub, v.ip.Src())
	assert.Equal(t, dflt, v.ip.Dst())
	assert.Equal(t, uint16(5000), v.dport)
}

// TestHairpinPoolToPool: member B's mapping towards member A's public
// endpoint fe1:P lets A's packets from that endpoint reach B, and B's
// replies reach A. Filtering is the same as for the outside: A's flows
// from other public ports are refused (no_flow), as are B's packets
// before A has a flow to B's public endpoint.
func TestHairpinPoolToPool(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 8), 1024)
	ma, _ := tr.Policy().Classify(memberA)
	p := ma.Block.First // A's public port B punches towards

	b := udp(memberB, fe1, 5000, p).build(t)
	out, in := hairpin(tr, b, 1000)
	require.Equal(t, VerdictHairpin, out)
	assert.Equal(t, DropNoFlow, in, "A has no flow towards B's public endpoint yet")
	pb := parsed(t, b).sport

	// A's flows towards fe1:pb each take a distinct port of its 8-port
	// block: exactly the one that took p reaches B.
	delivered := 0
	var from uint16
	for sp := uint16(6000); sp < 6008; sp++ {
		b := udp(memberA, fe1, sp, pb).build(t)
		out, in := hairpin(tr, b, 1001)
		require.Equal(t, VerdictHairpin, out)
		if in == VerdictForward {
			delivered++
			from = sp
			v := parsed(t, b)
			assert.Equal(t, fe1, v.ip.Src())
			assert.Equal(t, p, v.sport)
			assert.Equal(t, memberB, v.ip.Dst())
			assert.Equal(t, uint16(5000), v.dport)
		} else {
			assert.Equal(t, DropNoFlow, in)
		}
	}
	require.Equal(t, 1, delivered)

	reply := udp(memberB, fe1, 5000, p).build(t)
	out, in = hairpin(tr, reply, 1002)
	require.Equal(t, VerdictHairpin, out)
	require.Equal(t, VerdictForward, in)
	v := parsed(t, reply)
	assert.Equal(t, fe1, v.ip.Src())
	assert.Equal(t, pb, v.sport)
	assert.Equal(t, memberA, v.ip.Dst())
	assert.Equal(t, from, v.dport)
}

// TestHairpinOnlyToPublic: flows to other destinations are not hairpin
// flows, and a reload that makes a destination public makes its existing
// flows hairpin flows.
func TestHairpinOnlyToPublic(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 1024), 1024)
	b := udp(memberA, server, 5000, 53).build(t)
	assert.Equal(t, VerdictForward, tr.Outbound(b, 1000))
	b = udp(memberA, ip4("198.19.1.99"), 5000, 53).build(t)
	assert.Equal(t, VerdictForward, tr.Outbound(b, 1000))

	s := testSpec(1024)
	s.Instances = append(s.Instances, InstanceSpec{Private: ip4("10.0.3.8"), Public: ip4("198.19.1.99"),
		Inbound: []PortRule{{Proto: ProtoUDP, Lo: 53, Hi: 53}}})
	p2 := compileSpec(t, s, tr.Policy())
	tr.SetPolicy(p2)
	b = udp(memberA, ip4("198.19.1.99"), 5000, 53).build(t)
	out, in := hairpin(tr, b, 1001)
	assert.Equal(t, VerdictHairpin, out)
	assert.Equal(t, VerdictForward, in)
	assert.Equal(t, ip4("10.0.3.8"), parsed(t, b).ip.Dst())
}

// TestHairpinNoAllocs: a hairpinned round trip allocates nothing.
func TestHairpinNoAllocs(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 1024), 1024)
	b := tcp(memberA, instPub, 40000, 22, TCPFlagSYN).build(t)
	_, in := hairpin(tr, b, 1000)
	require.Equal(t, VerdictForward, in)
	orig := tcp(memberA, instPub, 40000, 22, TCPFlagACK).build(t)
	buf := make([]byte, len(orig))
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, orig)
		if _, in := hairpin(tr, buf, 1001); in != VerdictForward {
			t.Fatal(in)
		}
	})
	assert.Zero(t, allocs)
}
