package lcore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestAddressesAnnounced checks the signal BGP waits for: a port's
// addresses count as announced once gratuitous ARP went out after its
// link came up, and no longer while the link is down or before the next
// announcement after it came back.
func TestAddressesAnnounced(t *testing.T) {
	tb := newFakeGateway(t, 1)
	m := tb.rt.Manager
	tb.in.SetLink(false)
	tb.out.SetLink(false)
	m.maintain(time.Now())
	assert.False(t, m.AddressesAnnounced(PortInside))
	assert.False(t, m.AddressesAnnounced(PortOutside))
	tb.in.SetLink(true)
	tb.out.SetLink(true)
	m.maintain(time.Now())
	assert.True(t, m.AddressesAnnounced(PortInside))
	assert.True(t, m.AddressesAnnounced(PortOutside))

	tb.out.SetLink(false)
	m.announce()
	assert.False(t, m.AddressesAnnounced(PortOutside), "link down")
	assert.True(t, m.AddressesAnnounced(PortInside))
	tb.out.SetLink(true)
	m.announce()
	assert.True(t, m.AddressesAnnounced(PortOutside), "announced again on link up")
}
