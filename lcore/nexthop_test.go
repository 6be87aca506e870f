package lcore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// TestForwardNextHopPerBurst checks forward's next hops within and
// between bursts: within one burst every packet goes to its own next
// hop's MAC (hosts alternating, one of them unresolved), and a neighbour
// change published between two bursts takes effect at the next burst,
// both ways. A per-burst cache of the next hop (tried in issue 20's
// second round, BENCHMARKS.md) must keep passing it.
func TestForwardNextHopPerBurst(t *testing.T) {
	member2 := a4("10.0.1.5") // the pool's other member
	macHost2 := [6]byte{2, 0, 0, 0, 1, 10}
	tb := newFakeGateway(t, 1)
	setStatic := func(list ...StaticNeighbor) {
		tb.rt.Manager.SetStatic(list)
		tb.rt.Manager.applyStatic()
	}
	setStatic(StaticNeighbor{Addr: gateway, MAC: macGw}, StaticNeighbor{Addr: member, MAC: macHost},
		StaticNeighbor{Addr: member2, MAC: macHost2})

	// One outbound flow per host; learn their public ports.
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 53, 64))
	tb.in.Inject(0, udpFrame(t, macIn, macHost2, member2, server, 40001, 53, 64))
	tb.poll()
	var pubs []uint16
	for _, f := range tb.out.Sent() {
		eth, ip := parseFrame(t, f)
		require.Equal(t, macGw, eth.Dst())
		pubs = append(pubs, nat.UDP(ip.Payload()).SrcPort())
	}
	require.Len(t, pubs, 2)

	// replies sends one burst of replies to both flows, alternating, and
	// returns the destination MACs of the frames sent inside, by private
	// address, in order.
	replies := func() map[uint32][][6]byte {
		for range 3 {
			for _, pub := range pubs {
				tb.out.Inject(0, udpFrame(t, macOut, macGw, server, fe1, 53, pub, 64))
			}
		}
		tb.poll()
		got := map[uint32][][6]byte{}
		for _, f := range tb.in.Sent() {
			if nat.Ethernet(f).EtherType() != nat.EtherTypeIPv4 {
				continue
			}
			eth, ip := parseFrame(t, f)
			assert.Equal(t, macIn, eth.Src())
			got[ip.Dst()] = append(got[ip.Dst()], eth.Dst())
		}
		return got
	}
	got := replies()
	assert.Equal(t, [][6]byte{macHost, macHost, macHost}, got[member])
	assert.Equal(t, [][6]byte{macHost2, macHost2, macHost2}, got[member2])
	assert.Zero(t, totalVerdict(tb, nat.DropNoNeighbor))

	// member moves to a new MAC and member2 is no longer known: the next
	// burst sees both, packet by packet.
	macMoved := [6]byte{2, 0, 0, 0, 1, 11}
	macGwMoved := [6]byte{2, 0, 0, 0, 2, 10}
	setStatic(StaticNeighbor{Addr: gateway, MAC: macGwMoved}, StaticNeighbor{Addr: member, MAC: macMoved})
	got = replies()
	assert.Equal(t, [][6]byte{macMoved, macMoved, macMoved}, got[member])
	assert.Empty(t, got[member2])
	assert.Equal(t, uint64(3), totalVerdict(tb, nat.DropNoNeighbor))

	// The gateway's new MAC takes effect at the next outbound burst.
	tb.in.Inject(0, udpFrame(t, macIn, macMoved, member, server, 40000, 53, 64))
	tb.poll()
	var out [][6]byte
	for _, f := range tb.out.Sent() {
		if nat.Ethernet(f).EtherType() == nat.EtherTypeIPv4 {
			eth, _ := parseFrame(t, f)
			out = append(out, eth.Dst())
		}
	}
	assert.Equal(t, [][6]byte{macGwMoved}, out)
}
