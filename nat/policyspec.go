package nat

import "time"

// This file is the plain description of a policy that Compile takes:
// addresses as host-order uint32, port rules as numbers, timeouts in
// ticks (but default SNAT's ReclaimIdle, which only the management core
// uses, is a time.Duration). Nothing in it is text to parse. mgmt builds
// it from the configuration file (mgmt.PolicySpec); tests build it
// directly.

// PolicySpec describes a policy in plain values. Compile checks what it
// needs to (prefix lengths, block sizes, that the blocks fit) and keeps
// no reference to the spec's slices, so a caller may change a spec after
// compiling it.
type PolicySpec struct {
	// Inside and Outside are natgw's own addresses on the two links, with
	// the lengths of the attached subnets (inside.address,
	// outside.address).
	Inside, Outside Prefix
	// Gateway is the next hop of all outbound traffic.
	Gateway uint32
	// Routed are inside networks behind routers on the inside link.
	Routed []RoutedPrefix
	// SourceCheck checks the source of every new outbound flow
	// (TranslatorOptions.SourceCheck).
	SourceCheck bool
	// ClusterPeers are the inside addresses of the other nodes of a
	// cluster on the inside link (bgp.cluster_peers): a draining node
	// redirects new flows to them, and their frames pass the source
	// check.
	ClusterPeers []uint32
	// Timeouts are the idle timeouts of [S5].
	Timeouts Timeouts
	// ResetOnIdle sends RSTs when an established TCP flow idles out.
	ResetOnIdle bool
	// SessionEvents asks workers to report flows created and deleted
	// (the NAT log's "sessions" events, issue 16).
	SessionEvents bool
	// HostFlowPercent and InboundFlowPercent are the [limits] (see
	// Policy).
	HostFlowPercent, InboundFlowPercent int
	// Frontends are every frontend address, used or not: natgw answers
	// ARP for all of them.
	Frontends []uint32
	// Pools are the pools in configuration order; a flow's Scope is its
	// pool's index here.
	Pools []PoolSpec
	// Instances are the instance-level (1:1) public addresses.
	Instances []InstanceSpec
	// DefaultSNAT is default SNAT, or nil when it is off.
	DefaultSNAT *DefaultSNATSpec
	// Deny are the deny rules [S1].
	Deny []DenyRule
	// Drain says which flows drain rather than being reclaimed at once
	// (issue 19, drain.go).
	Drain DrainSpec
}

// Prefix is an IPv4 address with a prefix length (0-32). Where it names a
// network, the address's host bits are ignored.
type Prefix struct {
	Addr uint32
	Bits int
}

// RoutedPrefix is an inside network reached through the router Via on
// the inside link.
type RoutedPrefix struct {
	Prefix Prefix
	Via    uint32
}

// PoolSpec is one pool [S3].
type PoolSpec struct {
	// Name is the pool's metric label.
	Name string
	// Frontends are the addresses its blocks are laid out on, in order.
	Frontends []uint32
	// Members are the member addresses, in order (a prefix of the
	// configuration is every one of its addresses).
	Members []uint32
	// PortsPerMember is the block size; 0 means the tier table's size for
	// the pool's member count.
	PortsPerMember int
	// RejectOnExhaustion refuses a member's new flow at once when it has
	// no free port towards the destination (on_exhaustion = "reject"):
	// the worker asks for a TCP RST or an ICMP administratively
	// prohibited. Otherwise the flow is dropped silently.
	RejectOnExhaustion bool
	// Mapping and Filtering are the pool's mapping behaviour (RFC 4787
	// REQ-1, REQ-8; eim.go); the zero values are address-and-port
	// dependent.
	Mapping   MappingMode
	Filtering FilteringMode
}

// InstanceSpec is one instance: Private owns Public 1:1 [S1], and the
// outside may open flows to it that match Inbound [S6].
type InstanceSpec struct {
	Private, Public uint32
	Inbound         []PortRule
}

// PortRule matches packets by protocol and destination port: Proto is an
// IP protocol number (ProtoTCP, ProtoUDP, ProtoICMP) or 0 for any, ports
// Lo through Hi inclusive. ICMP has no ports: a rule that matches ICMP by
// protocol matches every ICMP packet.
type PortRule struct {
	Proto  uint8
	Lo, Hi uint16
}

// DenyRule blocks outbound traffic to Destination that matches its
// PortRule [S1].
type DenyRule struct {
	Destination Prefix
	PortRule
}

// DefaultSNATSpec is default SNAT: inside sources in Sources that are no
// instance and no pool member get a block of PortsPerMember ports on one
// of Frontends on first use [S1].
type DefaultSNATSpec struct {
	Sources        []Prefix
	Frontends      []uint32
	PortsPerMember int
	// Workers is the number of worker cores that report flows to the
	// shared assigner.
	Workers int
	// Mapping and Filtering are default SNAT's mapping behaviour, as for
	// a pool (PoolSpec).
	Mapping   MappingMode
	Filtering FilteringMode
	// ReclaimIdle is how long a block must have had no flows before the
	// management core reclaims it (default_snat.reclaim_idle); 0 leaves
	// the choice to the management core (mgmt takes the configuration's
	// default, 2m).
	ReclaimIdle time.Duration
}
