package lcore

import (
	"math/bits"
	"sync/atomic"
)

// Neighbors is an immutable snapshot of the neighbour table that the
// management core publishes for the workers: IPv4 address to MAC, and the
// outside gateway with its MAC resolved once, since every outbound packet
// needs it. Lookups are a probe of a small open-addressing table (address
// 0 is never a neighbour, so it marks a free slot): no Go map on the
// packet path.
type Neighbors struct {
	// Gateway is the next hop of all outbound traffic.
	Gateway uint32
	gwMAC   [6]byte
	gwOK    bool
	addrs   []uint32
	macs    [][6]byte
	// unconfirmed marks entries learnt from a frame's source only, which
	// ARP has not confirmed yet (nil: all are confirmed).
	unconfirmed []bool
	shift       uint
	n           int
}

// NewNeighbors builds a snapshot of macs with gateway as the next hop;
// every entry counts as confirmed by ARP.
func NewNeighbors(gateway uint32, macs map[uint32][6]byte) *Neighbors {
	return newNeighbors(gateway, macs, nil)
}

// newNeighbors builds a snapshot in which the addresses of unconfirmed
// are not confirmed by ARP.
func newNeighbors(gateway uint32, macs map[uint32][6]byte, unconfirmed map[uint32]bool) *Neighbors {
	logSize := max(4, bits.Len(uint(2*len(macs)))) // at most half full
	n := &Neighbors{Gateway: gateway, addrs: make([]uint32, 1<<logSize), macs: make([][6]byte, 1<<logSize),
		shift: uint(32 - logSize)}
	mask := uint32(len(n.addrs) - 1)
	for a, mac := range macs {
		if a == 0 {
			continue
		}
		i := n.home(a)
		for n.addrs[i] != 0 {
			i = (i + 1) & mask
		}
		n.addrs[i], n.macs[i] = a, mac
		if unconfirmed[a] {
			if n.unconfirmed == nil {
				n.unconfirmed = make([]bool, len(n.addrs))
			}
			n.unconfirmed[i] = true
		}
		n.n++
	}
	n.gwMAC, n.gwOK = n.Lookup(gateway)
	return n
}

func (n *Neighbors) home(a uint32) uint32 { return (a * 0x9e3779b1) >> n.shift }

// Lookup returns the MAC of a neighbour.
func (n *Neighbors) Lookup(addr uint32) ([6]byte, bool) {
	mask := uint32(len(n.addrs) - 1)
	for i := n.home(addr); ; i = (i + 1) & mask {
		switch n.addrs[i] {
		case addr:
			if addr != 0 {
				return n.macs[i], true
			}
			return [6]byte{}, false
		case 0:
			return [6]byte{}, false
		}
	}
}

// Binding returns the MAC of a neighbour and whether ARP confirmed it
// (an ARP request of the neighbour's for natgw's address, its reply to
// natgw's request, or a static entry); an entry learnt from a frame's
// source alone is not confirmed. The source check of new flows reads it.
func (n *Neighbors) Binding(addr uint32) (mac [6]byte, confirmed, ok bool) {
	mask := uint32(len(n.addrs) - 1)
	for i := n.home(addr); ; i = (i + 1) & mask {
		switch n.addrs[i] {
		case addr:
			if addr == 0 {
				return [6]byte{}, false, false
			}
			return n.macs[i], n.unconfirmed == nil || !n.unconfirmed[i], true
		case 0:
			return [6]byte{}, false, false
		}
	}
}

// GatewayMAC returns the gateway's MAC, if resolved.
func (n *Neighbors) GatewayMAC() ([6]byte, bool) { return n.gwMAC, n.gwOK }

// Len returns the number of resolved neighbours.
func (n *Neighbors) Len() int { return n.n }

// Range calls fn for every neighbour.
func (n *Neighbors) Range(fn func(addr uint32, mac [6]byte) bool) {
	for i, a := range n.addrs {
		if a != 0 && !fn(a, n.macs[i]) {
			return
		}
	}
}

// NeighborHolder publishes Neighbors snapshots: the management core
// stores, workers load once per poll.
type NeighborHolder struct{ p atomic.Pointer[Neighbors] }

// Load returns the current snapshot (never nil after NewNeighborHolder).
func (h *NeighborHolder) Load() *Neighbors { return h.p.Load() }

// Store publishes a snapshot.
func (h *NeighborHolder) Store(n *Neighbors) { h.p.Store(n) }

// NewNeighborHolder returns a holder with an empty snapshot.
func NewNeighborHolder(gateway uint32) *NeighborHolder {
	h := &NeighborHolder{}
	h.Store(NewNeighbors(gateway, nil))
	return h
}
