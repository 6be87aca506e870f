package lcore

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

var (
	peer1    = a4("10.0.0.2")
	peer2    = a4("10.0.0.3")
	macPeer1 = [6]byte{2, 0, 0, 0, 1, 0x21}
	macPeer2 = [6]byte{2, 0, 0, 0, 1, 0x22}
)

// newClusterTestbed is a runtime on fake ports running testSpec with the
// cluster peers peers; static are confirmed neighbours besides the
// gateway and the pool member.
func newClusterTestbed(t *testing.T, workers int, peers []uint32, static ...StaticNeighbor) *fakeGateway {
	t.Helper()
	s := testSpec()
	s.ClusterPeers = peers
	tb := &fakeGateway{in: NewFakePort("in", macIn, workers+1), out: NewFakePort("out", macOut, workers+1)}
	start := time.Now()
	var err error
	tb.rt, err = NewRuntime(RuntimeConfig{
		Clock:   func() nat.Tick { return nat.Tick(time.Since(start)/time.Millisecond+1) + nat.Tick(tb.skew.Load()) },
		Workers: workers, Ports: [NumPorts]Port{tb.in, tb.out}, Policy: holderOf(compileSpec(t, s, nil)), FlowCapacity: 4096,
		Static: append([]StaticNeighbor{{Addr: gateway, MAC: macGw}, {Addr: member, MAC: macHost}}, static...),
		Log:    slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	tb.rt.Manager.applyStatic()
	return tb
}

// flowsOf counts the flows in every worker's table.
func flowsOf(tb *fakeGateway) int {
	n := 0
	for _, w := range tb.rt.Workers {
		n += w.tr.Flows().Len()
	}
	return n
}

// TestDrainRedirectsNewFlows: while the node drains, packets of its
// flows are translated as usual and packets that match no flow leave by
// the inside port, untouched but for the MACs, to a peer: the same peer
// for every packet of a flow, both peers over many flows. A frame that a
// peer redirected is translated here, never sent on.
func TestDrainRedirectsNewFlows(t *testing.T) {
	for _, workers := range []int{1, 2} {
		tb := newClusterTestbed(t, workers, []uint32{peer1, peer2},
			StaticNeighbor{Addr: peer1, MAC: macPeer1}, StaticNeighbor{Addr: peer2, MAC: macPeer2})
		tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 53, 64))
		tb.poll()
		require.Len(t, tb.out.Sent(), 1, "workers=%d: the flow before the drain", workers)
		assert.Equal(t, 2, tb.rt.Manager.ClusterPeersResolved())

		tb.rt.Manager.Redirect.Store(true)
		tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 53, 64))
		tb.poll()
		out := tb.out.Sent()
		require.Len(t, out, 1, "workers=%d: the existing flow is translated", workers)
		_, ip := parseFrame(t, out[0])
		assert.Equal(t, fe1, ip.Src())

		peerOf := map[uint16][6]byte{}
		for round := range 3 {
			for i := range 32 {
				tb.in.Inject(i%workers, udpFrame(t, macIn, macHost, member, server, uint16(41000+i), 53, 64))
			}
			tb.poll()
			assert.Empty(t, tb.out.Sent(), "workers=%d: no new flow leaves by the outside", workers)
			redirected := 0
			for _, f := range tb.in.Sent() {
				eth := nat.Ethernet(f)
				if eth.EtherType() != nat.EtherTypeIPv4 {
					continue
				}
				redirected++
				assert.Equal(t, macIn, eth.Src())
				_, ip := parseFrame(t, f)
				port := nat.UDP(ip.Payload()).SrcPort()
				want := udpFrame(t, eth.Dst(), macIn, member, server, port, 53, 64)
				assert.True(t, bytes.Equal(want, f), "workers=%d: the packet leaves untouched (TTL and checksums too)", workers)
				if round == 0 {
					peerOf[port] = eth.Dst()
				} else {
					assert.Equal(t, peerOf[port], eth.Dst(), "workers=%d: every packet of a flow goes to the same peer", workers)
				}
			}
			assert.Equal(t, 32, redirected, "workers=%d round %d", workers, round)
		}
		peers := map[[6]byte]int{}
		for _, mac := range peerOf {
			peers[mac]++
		}
		assert.Len(t, peers, 2, "workers=%d: flows spread over both peers: %v", workers, peers)
		for mac := range peers {
			assert.Contains(t, [][6]byte{macPeer1, macPeer2}, mac)
		}
		assert.Equal(t, 1, flowsOf(tb), "workers=%d: redirected packets open no flow", workers)
		assert.Equal(t, uint64(96), totalVerdict(tb, nat.VerdictRedirect))

		// A packet a peer redirected here (the peer drains too) is
		// translated, not sent back.
		tb.in.Inject(0, udpFrame(t, macIn, macPeer1, member, server, 42000, 53, 64))
		tb.poll()
		assert.Len(t, tb.out.Sent(), 1, "workers=%d: a peer's redirect is translated here", workers)
		assert.Equal(t, 2, flowsOf(tb))

		// The drain switch off: new flows are translated here again.
		tb.rt.Manager.Redirect.Store(false)
		tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 41000, 53, 64))
		tb.poll()
		assert.Len(t, tb.out.Sent(), 1, "workers=%d", workers)
	}
}

// TestDrainWithoutPeers: with no peer resolved (none configured, or
// none answering ARP), a draining node translates new flows itself, as
// without cluster peers, and counts them.
func TestDrainWithoutPeers(t *testing.T) {
	for _, peers := range [][]uint32{nil, {peer1}} {
		tb := newClusterTestbed(t, 1, peers)
		tb.rt.Manager.maintain(time.Now())
		tb.rt.Manager.Redirect.Store(true)
		tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 53, 64))
		tb.poll()
		assert.Equal(t, 1, ipv4Frames(tb.out.Sent()), "peers %v: translated here", peers)
		w := tb.rt.Workers[0]
		w.publish()
		assert.Equal(t, uint64(1), w.Counters.RedirectNoPeer.Load(), "peers %v", peers)
		assert.Zero(t, totalVerdict(tb, nat.VerdictRedirect))
		if peers != nil {
			assert.Contains(t, arpRequestsFor(tb.in.Sent()), peer1, "natgw asks for its peer")
		}
	}
}

// TestPeerRedirectPassesSourceCheck: a frame from a cluster peer's MAC
// (a draining peer's redirect) carrying an inside host's address opens a
// flow, where the source check refuses it from any other MAC than the one
// ARP confirmed for the host; the peer's MAC is not gleaned for a host.
func TestPeerRedirectPassesSourceCheck(t *testing.T) {
	unconfirmed := a4("10.0.1.5") // the pool's other member, not a neighbour yet
	for _, withPeer := range []bool{false, true} {
		var peers []uint32
		if withPeer {
			peers = []uint32{peer1}
		}
		tb := newClusterTestbed(t, 1, peers, StaticNeighbor{Addr: peer1, MAC: macPeer1})
		tb.in.Inject(0, udpFrame(t, macIn, macPeer1, member, server, 40000, 53, 64))
		tb.in.Inject(0, udpFrame(t, macIn, macPeer1, unconfirmed, server, 40000, 53, 64))
		tb.poll()
		_, gleaned := tb.rt.Manager.neigh.Load().Lookup(unconfirmed)
		if withPeer {
			assert.Len(t, tb.out.Sent(), 2, "a peer's frames pass the source check")
			assert.Zero(t, totalVerdict(tb, nat.DropSpoofed))
			assert.False(t, gleaned, "the peer's MAC is not gleaned for the host")
		} else {
			assert.Len(t, tb.out.Sent(), 1, "without cluster_peers, only the unconfirmed host's own mapping passes")
			assert.Equal(t, uint64(1), totalVerdict(tb, nat.DropSpoofed), "the confirmed host's address from another MAC is spoofed")
			assert.True(t, gleaned)
		}
	}
}

// TestRedirectNoAllocs: a draining worker redirecting new flows
// allocates nothing.
func TestRedirectNoAllocs(t *testing.T) {
	tb := newClusterTestbed(t, 1, []uint32{peer1}, StaticNeighbor{Addr: peer1, MAC: macPeer1})
	tb.rt.Manager.Redirect.Store(true)
	fresh := udpFrame(t, macIn, macHost, member, server, 40000, 53, 64)
	tb.in.Inject(0, fresh)
	tb.poll()
	require.Len(t, tb.in.Sent(), 1)
	w := tb.rt.Workers[0]
	w.q[PortInside] = &loopQueue{orig: fresh, pkt: Packet{Data: make([]byte, len(fresh), 2048)}}
	w.q[PortOutside] = &loopQueue{orig: nil, pkt: Packet{Data: make([]byte, 0, 2048)}}
	w.PollOnce()
	allocs := testing.AllocsPerRun(200, func() { w.PollOnce() })
	assert.Zero(t, allocs)
	w.publish()
	assert.Greater(t, w.Counters.Verdicts[nat.VerdictRedirect].Load(), uint64(200), "the loop redirected packets")
}

// TestDrainForgetsSilentPeer: while the node drains, natgw asks its
// peers every second; a peer silent for peerSilence is forgotten, so new
// flows are translated here (counted as no peer) instead of being sent
// to a dead node. Silence counts from the drain's start: a peer last
// heard of long before it (peers are refreshed every 30 s) is kept.
func TestDrainForgetsSilentPeer(t *testing.T) {
	tb := newClusterTestbed(t, 1, []uint32{peer1})
	m := tb.rt.Manager
	t0 := time.Now()
	m.maintain(t0)
	require.Contains(t, arpRequestsFor(tb.in.Sent()), peer1)
	tb.in.Inject(0, arpFrame(macIn, macPeer1, nat.ARPReply, macPeer1, peer1, macIn, insideAddr))
	tb.poll()
	require.Equal(t, 1, m.ClusterPeersResolved(), "the peer answered")

	// The drain starts 20 s after the peer was last heard of.
	t1 := t0.Add(20 * time.Second)
	m.Redirect.Store(true)
	m.maintain(t1)
	assert.Equal(t, 1, m.ClusterPeersResolved(), "a peer heard of before the drain is kept at its start")
	assert.Contains(t, arpRequestsFor(tb.in.Sent()), peer1, "draining: the peer is asked")
	m.maintain(t1.Add(1100 * time.Millisecond))
	assert.Contains(t, arpRequestsFor(tb.in.Sent()), peer1, "draining: the peer is asked every second")
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 53, 64))
	tb.poll()
	assert.Equal(t, 1, ipv4Frames(tb.in.Sent()), "redirected to the peer")

	m.maintain(t1.Add(3500 * time.Millisecond))
	assert.Zero(t, m.ClusterPeersResolved(), "silent for 3 s of the drain: forgotten")
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40001, 53, 64))
	tb.poll()
	assert.Equal(t, 1, ipv4Frames(tb.out.Sent()), "translated here")
	w := tb.rt.Workers[0]
	w.publish()
	assert.Equal(t, uint64(1), w.Counters.RedirectNoPeer.Load())
}
