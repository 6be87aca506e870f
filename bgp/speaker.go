package bgp

import (
	"net/netip"
	"time"
)

// Side says which routers a route or peer is for.
type Side int

// The two sides of a node.
const (
	// Inside peers get the default route (or configured prefixes).
	Inside Side = iota
	// Outside peers get the node's public addresses as /32s.
	Outside
	// NumSides is the number of sides.
	NumSides
)

// String returns "inside" or "outside".
func (s Side) String() string {
	if s == Inside {
		return "inside"
	}
	return "outside"
}

// Route is a prefix announced with a next hop.
type Route struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
}

// Peer is a BGP neighbour of one side.
type Peer struct {
	// Name labels the peer in metrics and status.
	Name string
	// Address is the peer's address; Port its BGP port (179 when 0).
	Address netip.Addr
	Port    int
	// AS is the peer's AS number.
	AS uint32
}

// PeerState is a peer as the speaker sees it now.
type PeerState struct {
	Side    string `json:"side"`
	Name    string `json:"name"`
	Address string `json:"address"`
	AS      uint32 `json:"as"`
	// State is the BGP session state ("established", "active", ...).
	State string `json:"state"`
	// Established is State == "established".
	Established bool `json:"established"`
	// Flaps counts the times the session went down.
	Flaps uint32 `json:"flaps"`
}

// Speaker is what natgw needs from a BGP implementation. Implementations
// are safe for use by several goroutines.
type Speaker interface {
	// Announce makes routes the set announced to the side's peers:
	// routes not in it are withdrawn, new ones announced.
	Announce(side Side, routes []Route) error
	// Withdraw withdraws every route announced to the side's peers.
	Withdraw(side Side) error
	// Peers returns the state of every peer, inside peers first.
	Peers() []PeerState
	// Close stops the speaker; its sessions close.
	Close() error
}

// SpeakerOptions configure a speaker.
type SpeakerOptions struct {
	// LocalAS and RouterID identify natgw.
	LocalAS  uint32
	RouterID netip.Addr
	// Source is the local address of the sessions.
	Source netip.Addr
	// Peers are the neighbours of each side.
	Peers [NumSides][]Peer
	// HoldTime and Keepalive are the session timers (whole seconds).
	HoldTime, Keepalive time.Duration
	// ConnectRetry is how long natgw waits before it tries to connect to
	// a peer again (DefaultConnectRetry when 0).
	ConnectRetry time.Duration
}

// DefaultConnectRetry is how often natgw tries to reach a peer it has no
// session with: short, so a restarted node or router is back quickly.
const DefaultConnectRetry = time.Second
