package config

import "time"

// Config is the whole natgw configuration file (SPEC §5), as parsed from
// TOML. Field tags are the TOML keys; they are a contract with operators and
// must not change. Durations are kept as their text form in the file
// (Duration) so that validation can name the key of a bad value.
type Config struct {
	Dataplane   Dataplane    `toml:"dataplane"`
	Inside      InsidePort   `toml:"inside"`
	Outside     OutsidePort  `toml:"outside"`
	Neighbors   []Neighbor   `toml:"neighbor"`
	Timeouts    Timeouts     `toml:"timeouts"`
	Frontends   []Frontend   `toml:"frontend"`
	Pools       []Pool       `toml:"pool"`
	Instances   []Instance   `toml:"instance"`
	DefaultSNAT *DefaultSNAT `toml:"default_snat"`
	Deny        []DenyRule   `toml:"deny"`
	Mgmt        Mgmt         `toml:"mgmt"`
	Limits      Limits       `toml:"limits"`
	NatLog      NatLog       `toml:"nat_log"`
	// BGP announces the node to its routers (nil: no [bgp] section).
	BGP *BGP `toml:"bgp"`
	// Reload says what a reload does with flows it takes ports from.
	Reload Reload `toml:"reload,omitempty"`
}

// Dataplane selects the driver and sizes the workers and flow table.
type Dataplane struct {
	// Driver is "dpdk" or "afpacket".
	Driver string `toml:"driver"`
	// Workers is the number of poll-mode worker cores.
	Workers int `toml:"workers"`
	// EALArgs are passed to rte_eal_init (dpdk only).
	EALArgs []string `toml:"eal_args"`
	// FlowCapacity is the maximum number of concurrent flows, preallocated
	// and split evenly over the workers.
	FlowCapacity int `toml:"flow_capacity"`
	// WorkerCPUs, when set, has one CPU number per worker: worker i runs
	// pinned to WorkerCPUs[i], and natgw keeps all its other threads (the
	// management core, the HTTP server, the Go runtime, DPDK's control
	// threads) off those CPUs. Empty (the default): the kernel places
	// the workers.
	WorkerCPUs []int `toml:"worker_cpus"`
	// WorkerPriority, from 1 to 99, runs each worker thread SCHED_FIFO
	// at that real-time priority, so no normal thread of any process
	// takes its CPU; it needs WorkerCPUs. 0 (the default): the workers
	// keep the normal scheduling policy.
	WorkerPriority int `toml:"worker_priority,omitempty"`
	// RxDescriptors and TxDescriptors are the depth of each RX and TX
	// ring of a port, in frames (dpdk only; nil: DefaultDescriptors). A
	// ring of N frames rides out a worker stall of N / rate seconds; see
	// RxDesc and TxDesc.
	RxDescriptors *int `toml:"rx_descriptors,omitempty"`
	TxDescriptors *int `toml:"tx_descriptors,omitempty"`
}

// RxDesc returns dataplane.rx_descriptors, or DefaultDescriptors when the
// key is left out.
func (d *Dataplane) RxDesc() int { return descOrDefault(d.RxDescriptors) }

// TxDesc returns dataplane.tx_descriptors, or DefaultDescriptors when the
// key is left out.
func (d *Dataplane) TxDesc() int { return descOrDefault(d.TxDescriptors) }

// descOrDefault returns *n, or DefaultDescriptors when n is nil.
func descOrDefault(n *int) int {
	if n == nil {
		return DefaultDescriptors
	}
	return *n
}

// InsidePort is the port facing the private hosts.
type InsidePort struct {
	// Port is a PCI address or vdev name (dpdk) or an interface name (afpacket).
	Port string `toml:"port"`
	// Address is the gateway address of the private hosts, with its prefix
	// length ("10.0.0.1/16").
	Address string `toml:"address"`
	// SourceCheck validates the sources of new outbound flows (on when
	// absent; see SourceCheckOn): a source must be on the inside link or
	// in a Routed prefix, and come from the MAC ARP confirmed for it (for
	// a routed prefix, its router's).
	SourceCheck *bool `toml:"source_check"`
	// Routed are inside networks behind a router on the inside link.
	Routed []RoutedPrefix `toml:"routed"`
}

// SourceCheckOn reports whether inside.source_check is on (the default).
func (p *InsidePort) SourceCheckOn() bool { return p.SourceCheck == nil || *p.SourceCheck }

// RoutedPrefix is an inside network reached through a router on the inside
// link ([[inside.routed]]): its hosts' frames carry the router's MAC, so
// the source check compares them with the MAC ARP confirmed for Via.
type RoutedPrefix struct {
	// Prefix is the network ("10.1.0.0/16").
	Prefix string `toml:"prefix"`
	// Via is the router's address on the inside link.
	Via string `toml:"via"`
}

// OutsidePort is the port facing the next-hop router.
type OutsidePort struct {
	// Port is a PCI address or vdev name (dpdk) or an interface name (afpacket).
	Port string `toml:"port"`
	// Address is natgw's own address on the outside link, with prefix length.
	Address string `toml:"address"`
	// Gateway is the next hop for all outbound traffic.
	Gateway string `toml:"gateway"`
}

// Neighbor is a static neighbour entry, never aged or replaced by ARP.
type Neighbor struct {
	Address string `toml:"address"`
	MAC     string `toml:"mac"`
}

// Timeouts are the idle timeouts of SPEC [S5], as Go duration strings.
type Timeouts struct {
	TCPEstablished Duration `toml:"tcp_established"`
	TCPTransitory  Duration `toml:"tcp_transitory"`
	TCPClosing     Duration `toml:"tcp_closing"`
	UDP            Duration `toml:"udp"`
	ICMP           Duration `toml:"icmp"`
	// TCPResetOnIdle sends a RST to both ends when an established TCP flow
	// idles out.
	TCPResetOnIdle bool `toml:"tcp_reset_on_idle"`
}

// Frontend is a named public address that pools and default SNAT draw
// port blocks from.
type Frontend struct {
	Name    string `toml:"name"`
	Address string `toml:"address"`
	// Drain sets the frontend to drain (issue 19): no new flow takes a
	// port on it, pools lay their members' blocks out on their other
	// frontends where room allows, and the flows on it live until they
	// end or reload.reclaim_deadline passes.
	Drain bool `toml:"drain,omitempty"`
}

// Pool is a set of load-balanced members that share the pool's frontends
// through preallocated port blocks [S3].
type Pool struct {
	Name      string   `toml:"name"`
	Frontends []string `toml:"frontends"`
	// Members are addresses or prefixes; every address of a prefix is a member.
	Members []string `toml:"members"`
	// PortsPerMember overrides the tier table when non-zero (a multiple of 8,
	// at least 8).
	PortsPerMember int `toml:"ports_per_member"`
	// OnExhaustion says what a member's new flow gets when it has no free
	// port towards its destination: "drop" (the default, silence) or
	// "reject" (a TCP RST for a SYN, ICMP administratively prohibited
	// otherwise, rate-limited; issue 18).
	OnExhaustion string `toml:"on_exhaustion,omitempty"`
	// Mapping and Filtering are the pool's mapping behaviour (RFC 4787
	// REQ-1, REQ-8; behaviour.go): Mapping* and Filtering* values, empty
	// for the default, address-and-port dependent.
	Mapping   string `toml:"mapping,omitempty"`
	Filtering string `toml:"filtering,omitempty"`
}

// OnExhaustion values.
const (
	OnExhaustionDrop   = "drop"
	OnExhaustionReject = "reject"
)

// Instance gives one private address a whole public address (1:1) [S1].
type Instance struct {
	Private string `toml:"private"`
	Public  string `toml:"public"`
	// Inbound lists the inbound-initiated flows allowed to the instance:
	// "tcp/22", "tcp/8000-8100", "udp/*", "icmp".
	Inbound []string `toml:"inbound"`
	// Drain sets the instance's public address to drain (issue 19): no
	// new flow on it (the private address's new outbound flows take its
	// next scenario, a pool or default SNAT), its flows live until they
	// end or reload.reclaim_deadline passes.
	Drain bool `toml:"drain,omitempty"`
}

// DefaultSNAT gives any other inside source within Sources a port block on a
// default frontend, assigned on first use [S1].
type DefaultSNAT struct {
	Sources        []string `toml:"sources"`
	Frontends      []string `toml:"frontends"`
	PortsPerMember int      `toml:"ports_per_member"`
	// Mapping and Filtering are default SNAT's mapping behaviour, as for
	// a pool.
	Mapping   string `toml:"mapping,omitempty"`
	Filtering string `toml:"filtering,omitempty"`
	// ReclaimIdle is how long a source's block must have had no flows
	// before it is reclaimed for another source (default 2m).
	ReclaimIdle Duration `toml:"reclaim_idle,omitempty"`
}

// DenyRule blocks outbound traffic to a destination [S1].
type DenyRule struct {
	Destination string `toml:"destination"`
	// Protocol is tcp, udp, icmp or any.
	Protocol string `toml:"protocol"`
	// Ports is "25", "1000-2000" or "*".
	Ports string `toml:"ports"`
}

// Mgmt configures the management HTTP endpoint.
type Mgmt struct {
	Listen    string `toml:"listen"`
	TokenFile string `toml:"token_file"`
	// AllowInsecure permits a non-loopback listen address without a token.
	AllowInsecure bool `toml:"allow_insecure"`
}

// Duration is a time.Duration written in the file as a Go duration string
// ("4m", "30s").
type Duration struct {
	time.Duration
	// Set records that the key was present in the file.
	Set bool
}

// Limits is the [limits] section: bounds on the flows one host may hold,
// so that no host, inside or outside, can fill the flow table for the
// others (RFC 6888 REQ-4). Each bound applies to each worker's share of
// the flow table, and a reload changes them.
type Limits struct {
	// HostFlowPercent bounds the flows one host may have opened, as a
	// percentage of a worker's flow table: outbound flows per inside
	// host, inbound flows (through an instance's inbound rules) per
	// outside host.
	HostFlowPercent int `toml:"host_flow_percent"`
	// InboundFlowPercent bounds all flows opened from the outside, as a
	// percentage of a worker's flow table, so the rest stays for flows
	// the inside opens.
	InboundFlowPercent int `toml:"inbound_flow_percent"`
}
