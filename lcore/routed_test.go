package lcore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// TestReturnTrafficToRoutedHosts: return traffic for a host of a routed
// prefix ([[inside.routed]]) goes to its router's MAC, as natgw's routers
// behind ECMP need (issue 17): before, natgw looked the host itself up,
// found no neighbour (it is not on the link) and dropped the reply as
// no_neighbor.
func TestReturnTrafficToRoutedHosts(t *testing.T) {
	tb := newSourceCheckTestbed(t, true)
	// The first frame makes natgw ask for the router; its reply confirms it.
	tb.in.Inject(0, udpFrame(t, macIn, macRouter, routedHost, server, 5000, 53, 64))
	tb.poll()
	tb.in.Inject(0, arpFrame(macIn, macRouter, nat.ARPReply, macRouter, routerIn, macIn, insideAddr))
	tb.poll()
	tb.in.Inject(0, udpFrame(t, macIn, macRouter, routedHost, server, 5000, 53, 64))
	tb.poll()
	sent := tb.out.Sent()
	require.Equal(t, 1, ipv4Frames(sent))
	var pub uint16
	var public uint32
	for _, f := range sent {
		if nat.Ethernet(f).EtherType() == nat.EtherTypeIPv4 {
			_, ip := parseFrame(t, f)
			public, pub = ip.Src(), nat.UDP(ip.Payload()).SrcPort()
		}
	}
	tb.in.Sent() // forget what went inside so far
	tb.out.Inject(0, udpFrame(t, macOut, macGw, server, public, 53, pub, 64))
	tb.poll()
	var back [][]byte
	for _, f := range tb.in.Sent() {
		if nat.Ethernet(f).EtherType() == nat.EtherTypeIPv4 {
			back = append(back, f)
		}
	}
	require.Len(t, back, 1, "the reply reaches the inside")
	eth, ip := parseFrame(t, back[0])
	assert.Equal(t, macRouter, eth.Dst(), "through the routed prefix's router")
	assert.Equal(t, routedHost, ip.Dst())
	assert.Zero(t, totalVerdict(tb, nat.DropNoNeighbor))
}
