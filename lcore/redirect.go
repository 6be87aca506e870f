package lcore

import (
	"sync/atomic"

	"github.com/natgw/natgw/nat"
)

// This file is a worker's part of a cluster drain (issue 17): the nodes of
// a cluster share the inside link (bgp.cluster_peers lists the others'
// inside addresses). A draining node keeps its inside route announced and
// sends every packet from the inside that matches none of its flows,
// untranslated, to a peer's inside MAC; the peer translates it as its own
// new flow (its frames pass the peer's source check). The draining node's
// own flows keep being translated until they end; then it withdraws its
// routes, and the flows it redirected reach their node straight from the
// inside router. The cost on the packet path is one test of a bool on the
// miss path (nat.Translator.SetRedirect).

// MaxClusterPeers bounds bgp.cluster_peers: a worker keeps the peers' MACs
// in a fixed array.
const MaxClusterPeers = 16

// clusterState is a worker's view of its cluster peers.
type clusterState struct {
	// on is the node's drain switch (WorkerConfig.Redirect).
	on *atomic.Bool
	// macs are the MACs of the peers ARP confirmed, n of them, taken
	// from the snapshot neigh under policy pol.
	macs  [MaxClusterPeers][6]byte
	n     int
	neigh *Neighbors
	pol   *nat.Policy
	// to is the peer chosen for each packet of the inside port's batch
	// that the translator redirected (by batch index).
	to [Burst * 2]uint8
	// noPeer counts new flows translated here while redirecting because
	// no peer was resolved.
	noPeer uint64
}

// isPeer reports whether mac is a resolved cluster peer's.
func (c *clusterState) isPeer(mac [6]byte) bool {
	for i := range c.n {
		if c.macs[i] == mac {
			return true
		}
	}
	return false
}

// clusterPoll, once per poll, refreshes the peers' MACs when the
// neighbour snapshot or the policy changed, and turns the translator's
// redirection on or off with the drain switch.
func (w *Worker) clusterPoll(neigh *Neighbors) {
	c := &w.cl
	if pol := w.tr.Policy(); neigh != c.neigh || pol != c.pol {
		c.neigh, c.pol, c.n = neigh, pol, 0
		for _, a := range pol.ClusterPeers {
			if c.n == MaxClusterPeers {
				break
			}
			if mac, confirmed, ok := neigh.Binding(a); ok && confirmed {
				c.macs[c.n] = mac
				c.n++
			}
		}
	}
	if c.on != nil {
		w.tr.SetRedirect(c.on.Load())
	}
}

// redirectNew is the translator's Redirect hook: packet i of the outbound
// burst being translated would open a flow while the node drains. It goes
// to a peer chosen by a hash of its private 5-tuple (so all packets of a
// flow go to the same peer), unless it came from a peer (redirected
// once, never sent on: two draining nodes don't bounce it) or no peer is
// resolved (then it is translated here and counted).
func (w *Worker) redirectNew(i int, k *nat.OutKey) bool {
	if i >= len(w.checking) {
		return false
	}
	c := &w.cl
	if c.n == 0 {
		c.noPeer++
		return false
	}
	if c.isPeer(nat.Ethernet(w.checking[i].Data).Src()) {
		return false
	}
	c.to[w.checkBase+i] = uint8(uint64(peerHash(k)) * uint64(c.n) >> 32)
	return true
}

// peerHash mixes a private 5-tuple into 32 bits.
func peerHash(k *nat.OutKey) uint32 {
	h := uint64(k.Priv)<<32 | uint64(k.Remote)
	h ^= (uint64(k.PrivPort)<<16|uint64(k.RemotePort))<<8 ^ uint64(k.Proto)
	h *= 0x9e3779b97f4a7c15
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return uint32(h >> 32)
}

// redirect sends packet i of the inside port's batch, untranslated, back
// out of the inside port to the peer redirectNew chose.
func (w *Worker) redirect(p *Packet, i int) {
	eth := nat.Ethernet(p.Data)
	eth.SetDst(w.cl.macs[w.cl.to[i]])
	eth.SetSrc(w.mac[PortInside])
	w.queueTx(PortInside, p)
}
