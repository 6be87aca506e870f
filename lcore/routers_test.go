package lcore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// TestInsideRoutersResolvedAhead: the manager asks for the routers of
// routed prefixes without waiting for their hosts' traffic, and says when
// ARP confirmed them (a node behind ECMP is announced only then: before,
// a restarted node dropped the first packet of every routed host as
// spoofed while it asked).
func TestInsideRoutersResolvedAhead(t *testing.T) {
	tb := newSourceCheckTestbed(t, true)
	m := tb.rt.Manager
	require.False(t, m.InsideRoutersResolved())
	m.maintain(time.Now())
	assert.Contains(t, arpRequestsFor(tb.in.Sent()), routerIn, "asked for the router with no traffic")
	tb.in.Inject(0, arpFrame(macIn, macRouter, nat.ARPReply, macRouter, routerIn, macIn, insideAddr))
	tb.poll()
	assert.True(t, m.InsideRoutersResolved())

	// The first packet of a routed host now passes.
	tb.in.Inject(0, udpFrame(t, macIn, macRouter, routedHost, server, 5000, 53, 64))
	tb.poll()
	assert.Equal(t, 1, ipv4Frames(tb.out.Sent()))
	assert.Zero(t, totalVerdict(tb, nat.DropSpoofed))
}
