package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// srcCall is one call of a test SourceCheck.
type srcCall struct {
	i        int
	src      uint32
	newBlock bool
}

// TestSourceCheckOnNewFlowsOnly: the source check is asked about new
// outbound flows only, with the packet's index in the burst and whether a
// default-SNAT block would be assigned; its verdict refuses the flow
// before it takes a port or a block; packets of established flows never
// reach it.
func TestSourceCheckOnNewFlowsOnly(t *testing.T) {
	p := testPolicy(t, 1024)
	require.True(t, p.SourceCheck, "inside.source_check is on by default")
	var calls []srcCall
	refuse := map[uint32]bool{}
	tr := NewTranslator(p, TranslatorOptions{FlowCapacity: 1024, Seed: 1, SourceCheck: func(i int, src uint32, newBlock bool) Verdict {
		calls = append(calls, srcCall{i, src, newBlock})
		if refuse[src] {
			return DropSpoofed
		}
		return VerdictForward
	}}, 1000)

	// A burst longer than one chunk: indexes count across chunks.
	var pkts [][]byte
	for i := range 70 {
		pkts = append(pkts, udp(memberA, server, uint16(20000+i), 53).build(t))
	}
	pkts = append(pkts, udp(dflt, server, 5000, 53).build(t))
	verdicts := make([]Verdict, len(pkts))
	tr.OutboundBurst(pkts, verdicts, 1000)
	require.Len(t, calls, 71)
	for i, c := range calls[:70] {
		assert.Equal(t, srcCall{i, memberA, false}, c)
		assert.Equal(t, VerdictForward, verdicts[i])
	}
	assert.Equal(t, srcCall{70, dflt, true}, calls[70], "the default-SNAT host's first flow takes a new block")

	// Established flows: no call.
	calls = nil
	for i := range pkts {
		pkts[i] = udp(memberA, server, uint16(20000+i), 53).build(t)
	}
	pkts[70] = udp(dflt, server, 5000, 53).build(t)
	tr.OutboundBurst(pkts, verdicts, 1001)
	assert.Empty(t, calls, "packets of existing flows are not checked")

	// Another flow of the default-SNAT host: its block exists.
	assert.Equal(t, VerdictForward, tr.Outbound(udp(dflt, server2, 5000, 53).build(t), 1002))
	assert.Equal(t, []srcCall{{0, dflt, false}}, calls)

	// A refused source gets nothing: no flow, no block, no port.
	calls = nil
	other := ip4("10.0.9.10")
	refuse[other] = true
	flows := tr.Flows().Len()
	assert.Equal(t, DropSpoofed, tr.Outbound(udp(other, server, 5000, 53).build(t), 1003))
	assert.Equal(t, []srcCall{{0, other, true}}, calls)
	assert.Equal(t, flows, tr.Flows().Len())
	_, ok := p.DefaultSNAT().Lookup(other)
	assert.False(t, ok, "no default-SNAT block for a refused source")
	assert.Equal(t, uint64(1), tr.Stats.Verdicts[DropSpoofed])
	assert.Equal(t, "spoofed", DropSpoofed.String())
}

// TestSourceCheckOff: with the source check off (inside.source_check =
// false) the check is not asked.
func TestSourceCheckOff(t *testing.T) {
	s := testSpec(1024)
	s.SourceCheck = false
	p := compileSpec(t, s, nil)
	require.False(t, p.SourceCheck)
	called := false
	tr := NewTranslator(p, TranslatorOptions{FlowCapacity: 64, SourceCheck: func(int, uint32, bool) Verdict {
		called = true
		return DropSpoofed
	}}, 1000)
	assert.Equal(t, VerdictForward, tr.Outbound(udp(dflt, server, 5000, 53).build(t), 1000))
	assert.False(t, called)
}

// TestInsideNextHop: on-link sources are their own next hop, routed
// prefixes name their router, anything else is no inside host.
func TestInsideNextHop(t *testing.T) {
	s := testSpec(1024)
	s.Routed = []RoutedPrefix{{Prefix: Prefix{Addr: ip4("10.7.0.0"), Bits: 16}, Via: ip4("10.0.0.254")}}
	p := compileSpec(t, s, nil)
	for _, tt := range []struct {
		src, hop string
		ok       bool
	}{
		{"10.0.1.4", "10.0.1.4", true},
		{"10.0.255.254", "10.0.255.254", true},
		{"10.7.3.3", "10.0.0.254", true},
		{"10.0.0.1", "0.0.0.0", false}, // natgw's own address
		{"10.8.0.1", "0.0.0.0", false},
		{"192.168.1.1", "0.0.0.0", false},
	} {
		hop, ok := p.InsideNextHop(ip4(tt.src))
		assert.Equal(t, tt.ok, ok, tt.src)
		if ok {
			assert.Equal(t, ip4(tt.hop), hop, tt.src)
		}
	}
}
