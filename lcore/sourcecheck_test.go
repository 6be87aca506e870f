package lcore

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

var (
	macAttacker = [6]byte{2, 0, 0, 0, 1, 0x66}
	macDflt     = [6]byte{2, 0, 0, 0, 1, 0x99}
	macRouter   = [6]byte{2, 0, 0, 0, 1, 0xfe}
	dfltHost    = a4("10.0.9.9")
	routerIn    = a4("10.0.0.254")
	routedHost  = a4("10.7.1.1")
	insideAddr  = a4("10.0.0.1")
)

// sourceCheckSpec is testSpec with two workers, default SNAT for
// 10.0.0.0/8 and a routed prefix 10.7.0.0/16 through 10.0.0.254; check
// is inside.source_check.
func sourceCheckSpec(check bool) nat.PolicySpec {
	s := testSpec()
	s.SourceCheck = check
	s.Routed = []nat.RoutedPrefix{{Prefix: nat.Prefix{Addr: a4("10.7.0.0"), Bits: 16}, Via: routerIn}}
	feDefault := a4("198.19.1.20")
	s.Frontends = append(s.Frontends, feDefault)
	s.DefaultSNAT = &nat.DefaultSNATSpec{Sources: []nat.Prefix{{Addr: a4("10.0.0.0"), Bits: 8}},
		Frontends: []uint32{feDefault}, PortsPerMember: 512, Workers: 2}
	return s
}

// newSourceCheckTestbed is a two-worker runtime on fake ports running
// sourceCheckSpec(check), with the gateway and the pool member 10.0.1.4 as
// static (so confirmed) neighbours.
func newSourceCheckTestbed(t *testing.T, check bool) *testbed {
	t.Helper()
	holder := holderOf(compileSpec(t, sourceCheckSpec(check), nil))
	tb := &testbed{in: NewFakePort("in", macIn, 3), out: NewFakePort("out", macOut, 3)}
	start := time.Now()
	var err error
	tb.rt, err = NewRuntime(RuntimeConfig{
		Clock:   func() nat.Tick { return nat.Tick(time.Since(start)/time.Millisecond+1) + nat.Tick(tb.skew.Load()) },
		Workers: 2, Ports: [NumPorts]Port{tb.in, tb.out}, Policy: holder, FlowCapacity: 4096,
		Static: []StaticNeighbor{{Addr: gateway, MAC: macGw}, {Addr: member, MAC: macHost}},
		Log:    slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	tb.rt.Manager.applyStatic()
	return tb
}

// arpRequestsFor returns the addresses natgw asked for by ARP in frames.
func arpRequestsFor(frames [][]byte) []uint32 {
	var asked []uint32
	for _, f := range frames {
		if nat.Ethernet(f).EtherType() != nat.EtherTypeARP {
			continue
		}
		if a := nat.ARP(f[nat.EthernetLen:]); a.Op() == nat.ARPRequest {
			asked = append(asked, a.TargetIP())
		}
	}
	return asked
}

// ipv4Frames counts the IPv4 frames among frames.
func ipv4Frames(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		if nat.Ethernet(f).EtherType() == nat.EtherTypeIPv4 {
			n++
		}
	}
	return n
}

// TestSpoofedPoolMember: frames claiming a pool member's address from
// another MAC than the one confirmed for it open no flow and take none of
// its ports (spoofed); the member's own frames beside them work.
func TestSpoofedPoolMember(t *testing.T) {
	tb := newSourceCheckTestbed(t, true)
	for i := range 40 {
		tb.in.Inject(i%2, udpFrame(t, macIn, macAttacker, member, server, uint16(30000+i), 53, 64))
	}
	tb.poll()
	assert.Zero(t, ipv4Frames(tb.out.Sent()), "nothing spoofed went out")
	assert.Equal(t, uint64(40), totalVerdict(tb, nat.DropSpoofed))
	for _, w := range tb.rt.Workers {
		assert.Zero(t, w.tr.Flows().Len())
	}
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 53, 64))
	tb.poll()
	assert.Equal(t, 1, ipv4Frames(tb.out.Sent()), "the member's own frame is translated")
	mac, confirmed, ok := tb.rt.Manager.neigh.Load().Binding(member)
	assert.True(t, ok && confirmed)
	assert.Equal(t, macHost, mac, "the binding did not move")
}

// TestDefaultSNATNeedsARP: a default-SNAT host ARP has not confirmed gets
// no block; natgw asks for it, and once it answered, its flows work and
// the same address from another MAC is refused. 63 never-answering
// spoofed sources take no block.
func TestDefaultSNATNeedsARP(t *testing.T) {
	tb := newSourceCheckTestbed(t, true)
	tb.in.Inject(0, udpFrame(t, macIn, macDflt, dfltHost, server, 5000, 53, 64))
	for i := range 63 {
		tb.in.Inject(1, udpFrame(t, macIn, macAttacker, dfltHost+uint32(100+i), server, 5000, 53, 64))
	}
	tb.poll()
	assert.Zero(t, ipv4Frames(tb.out.Sent()))
	assert.Equal(t, uint64(64), totalVerdict(tb, nat.DropSpoofed))
	asked := arpRequestsFor(tb.in.Sent())
	assert.Contains(t, asked, dfltHost, "natgw asks the host to confirm")
	d := tb.rt.Workers[0].tr.Policy().DefaultSNAT()
	for i := range 63 {
		_, ok := d.Lookup(dfltHost + uint32(100+i))
		assert.False(t, ok, "a spoofed source got a default-SNAT block")
	}
	_, ok := d.Lookup(dfltHost)
	assert.False(t, ok)

	// The host answers natgw's request.
	tb.in.Inject(0, arpFrame(macIn, macDflt, nat.ARPReply, macDflt, dfltHost, macIn, insideAddr))
	tb.poll()
	_, confirmed, _ := tb.rt.Manager.neigh.Load().Binding(dfltHost)
	require.True(t, confirmed)
	tb.in.Inject(0, udpFrame(t, macIn, macDflt, dfltHost, server, 5000, 53, 64))
	tb.poll()
	assert.Equal(t, 1, ipv4Frames(tb.out.Sent()), "the confirmed host's flow works")

	// Its address from another MAC, and an ARP request claiming it for
	// that MAC, change nothing.
	tb.in.Inject(1, arpFrame(macIn, macAttacker, nat.ARPRequest, macAttacker, dfltHost, [6]byte{}, insideAddr))
	tb.in.Inject(1, udpFrame(t, macIn, macAttacker, dfltHost, a4("198.18.0.11"), 5001, 53, 64))
	tb.poll()
	assert.Zero(t, ipv4Frames(tb.out.Sent()))
	assert.Equal(t, uint64(65), totalVerdict(tb, nat.DropSpoofed))
	mac, _, _ := tb.rt.Manager.neigh.Load().Binding(dfltHost)
	assert.Equal(t, macDflt, mac, "the binding did not move")
}

// TestSourcesOutsideTheInside: a source neither on the inside link nor in
// a routed prefix is refused; a routed prefix's hosts pass from their
// router's confirmed MAC and only from it.
func TestSourcesOutsideTheInside(t *testing.T) {
	tb := newSourceCheckTestbed(t, true)
	tb.in.Inject(0, udpFrame(t, macIn, macAttacker, a4("10.8.1.1"), server, 5000, 53, 64))
	tb.in.Inject(0, udpFrame(t, macIn, macRouter, routedHost, server, 5000, 53, 64))
	tb.poll()
	assert.Zero(t, ipv4Frames(tb.out.Sent()))
	assert.Equal(t, uint64(2), totalVerdict(tb, nat.DropSpoofed), "unknown source, and a router ARP has not confirmed")
	assert.Contains(t, arpRequestsFor(tb.in.Sent()), routerIn, "natgw asks for the router")

	tb.in.Inject(0, arpFrame(macIn, macRouter, nat.ARPReply, macRouter, routerIn, macIn, insideAddr))
	tb.poll()
	tb.in.Inject(0, udpFrame(t, macIn, macRouter, routedHost, server, 5000, 53, 64))
	tb.in.Inject(0, udpFrame(t, macIn, macAttacker, routedHost+1, server, 5000, 53, 64))
	tb.poll()
	assert.Equal(t, 1, ipv4Frames(tb.out.Sent()), "the routed host through its router")
	assert.Equal(t, uint64(3), totalVerdict(tb, nat.DropSpoofed))
}

// TestSourceCheckOffAdmitsAll: with inside.source_check = false the same
// spoofed frames are translated (what the check prevents).
func TestSourceCheckOffAdmitsAll(t *testing.T) {
	tb := newSourceCheckTestbed(t, false)
	tb.in.Inject(0, udpFrame(t, macIn, macAttacker, member, server, 30000, 53, 64))
	tb.in.Inject(0, udpFrame(t, macIn, macAttacker, dfltHost+100, server, 5000, 53, 64))
	tb.poll()
	assert.Equal(t, 2, ipv4Frames(tb.out.Sent()))
	assert.Zero(t, totalVerdict(tb, nat.DropSpoofed))
}
