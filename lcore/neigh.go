package lcore

import "sync/atomic"

// Neighbors is an immutable snapshot of the neighbour table that the
// management core publishes for the workers: IPv4 address to MAC, and the
// outside gateway's address.
type Neighbors struct {
	// Gateway is the next hop of all outbound traffic.
	Gateway uint32
	macs    map[uint32][6]byte
}

// Lookup returns the MAC of a neighbour.
func (n *Neighbors) Lookup(addr uint32) ([6]byte, bool) {
	m, ok := n.macs[addr]
	return m, ok
}

// Len returns the number of resolved neighbours.
func (n *Neighbors) Len() int { return len(n.macs) }

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
	h.Store(&Neighbors{Gateway: gateway, macs: map[uint32][6]byte{}})
	return h
}
