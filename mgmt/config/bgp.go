package config

import (
	"fmt"
	"net/netip"
	"time"
)

// BGP is the [bgp] section: natgw announces itself to its routers so that
// several nodes can run behind ECMP (issue 17). Towards the inside peers
// it announces InsidePrefixes (the default route unless set) with its
// inside address as next hop; towards the outside peers its frontend and
// instance addresses as /32s with its outside address as next hop. It
// announces only while it is ready, imports nothing, and runs its sessions
// from SourceAddress over the host's own network stack (the management
// network), whatever the dataplane driver.
type BGP struct {
	// LocalAS is natgw's autonomous system number.
	LocalAS uint32 `toml:"local_as"`
	// RouterID is the BGP identifier (an IPv4 address; SourceAddress when
	// left out).
	RouterID string `toml:"router_id"`
	// SourceAddress is the host address the sessions come from (a kernel
	// address on the management network). natgw connects to its peers
	// and does not listen: a router accepts its sessions with a neighbor
	// statement or a listen range.
	SourceAddress string `toml:"source_address"`
	// HoldTime is the BGP hold time offered to the peers (3s to 65535s,
	// default 9s); KeepaliveInterval defaults to a third of it.
	HoldTime          Duration `toml:"hold_time"`
	KeepaliveInterval Duration `toml:"keepalive_interval"`
	// HoldDown is how long natgw must stay ready after it withdrew its
	// routes before it announces them again (default 5s).
	HoldDown Duration `toml:"hold_down"`
	// DrainDeadline bounds how long a drain waits for the node's flows to
	// end after it withdrew its inside routes (default 30s).
	DrainDeadline Duration `toml:"drain_deadline"`
	// DrainOnSIGTERM makes SIGTERM drain the node before it exits;
	// SIGINT always stops at once.
	DrainOnSIGTERM bool `toml:"drain_on_sigterm"`
	// InsidePrefixes are announced to the inside peers (default
	// ["0.0.0.0/0"]).
	InsidePrefixes []string `toml:"inside_prefixes"`
	// InsidePeers are the routers on the inside (they spread outbound
	// flows over the nodes); OutsidePeers the routers on the outside
	// (they send return traffic to the node that owns its address).
	InsidePeers  []BGPPeer `toml:"inside_peer"`
	OutsidePeers []BGPPeer `toml:"outside_peer"`
	// ClusterPeers are the inside addresses of the cluster's other
	// nodes, on the inside link. A draining node with a peer resolved
	// keeps its inside route and redirects every new flow to a peer
	// until its own flows ended, so they finish intact; a peer's frames
	// pass inside.source_check. Empty: a drain withdraws the inside
	// route first.
	ClusterPeers []string `toml:"cluster_peers"`
}

// ClusterPeerAddrs returns bgp.cluster_peers parsed (valid after
// Validate).
func (b *BGP) ClusterPeerAddrs() []netip.Addr {
	var out []netip.Addr
	for _, s := range b.ClusterPeers {
		if a, err := ParseIPv4(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// BGPPeer is one BGP neighbour.
type BGPPeer struct {
	// Name labels the peer in metrics and status (default "inside0",
	// "outside1", ...: metric labels never hold an address).
	Name string `toml:"name"`
	// Address is the peer's address.
	Address string `toml:"address"`
	// AS is the peer's autonomous system number.
	AS uint32 `toml:"as"`
}

// BGP defaults and limits.
const (
	// DefaultBGPHoldTime is bgp.hold_time.
	DefaultBGPHoldTime = 9 * time.Second
	// DefaultBGPHoldDown is bgp.hold_down.
	DefaultBGPHoldDown = 5 * time.Second
	// DefaultBGPDrainDeadline is bgp.drain_deadline.
	DefaultBGPDrainDeadline = 30 * time.Second
	// MinBGPHoldTime is the shortest hold time BGP allows (RFC 4271 §4.2).
	MinBGPHoldTime = 3 * time.Second
	// MaxBGPHoldTime is the longest hold time BGP can carry.
	MaxBGPHoldTime = 65535 * time.Second
	// MaxBGPDuration bounds hold_down and drain_deadline.
	MaxBGPDuration = time.Hour
	// MaxClusterPeers bounds bgp.cluster_peers (lcore.MaxClusterPeers:
	// workers keep the peers' MACs in a fixed array).
	MaxClusterPeers = 16
)

// applyDefaults fills the defaults of a [bgp] section that is present.
func (b *BGP) applyDefaults() {
	if b == nil {
		return
	}
	defaultDuration(&b.HoldTime, DefaultBGPHoldTime)
	if !b.KeepaliveInterval.Set && b.KeepaliveInterval.Duration == 0 {
		b.KeepaliveInterval.Duration = b.HoldTime.Duration / 3
	}
	defaultDuration(&b.HoldDown, DefaultBGPHoldDown)
	defaultDuration(&b.DrainDeadline, DefaultBGPDrainDeadline)
	if b.InsidePrefixes == nil {
		b.InsidePrefixes = []string{"0.0.0.0/0"}
	}
	for i := range b.InsidePeers {
		if b.InsidePeers[i].Name == "" {
			b.InsidePeers[i].Name = fmt.Sprintf("inside%d", i)
		}
	}
	for i := range b.OutsidePeers {
		if b.OutsidePeers[i].Name == "" {
			b.OutsidePeers[i].Name = fmt.Sprintf("outside%d", i)
		}
	}
}

// Source returns bgp.source_address (valid after Validate).
func (b *BGP) Source() netip.Addr { a, _ := ParseIPv4(b.SourceAddress); return a }

// ID returns the router id: bgp.router_id, or the source address.
func (b *BGP) ID() netip.Addr {
	if b.RouterID == "" {
		return b.Source()
	}
	a, _ := ParseIPv4(b.RouterID)
	return a
}

// Prefixes returns bgp.inside_prefixes parsed (valid after Validate).
func (b *BGP) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(b.InsidePrefixes))
	for _, s := range b.InsidePrefixes {
		if p, err := ParseIPv4Prefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Addr returns the peer's address (valid after Validate).
func (p *BGPPeer) Addr() netip.Addr { a, _ := ParseIPv4(p.Address); return a }

// bgp checks [bgp].
func (v *validator) bgp() {
	b := v.c.BGP
	if b == nil {
		return
	}
	if b.LocalAS == 0 {
		v.add("bgp.local_as", "missing: natgw's AS number (1 to 4294967295)")
	}
	var src netip.Addr
	if v.required("bgp.source_address", b.SourceAddress, `the management address the sessions come from, like "192.0.2.11"`) {
		if a, err := v.unicast("bgp.source_address", b.SourceAddress); err == nil {
			src = a
			if key, ok := v.publics[a]; ok {
				v.addf("bgp.source_address", "%s is %s: the sessions run over the host's management network, not the dataplane ports", a, key)
			}
		}
	}
	if b.RouterID != "" {
		if _, err := ParseIPv4(b.RouterID); err != nil {
			v.add("bgp.router_id", err.Error())
		}
	}
	ht := b.HoldTime.Duration
	if ht < MinBGPHoldTime || ht > MaxBGPHoldTime || ht%time.Second != 0 {
		v.addf("bgp.hold_time", "%s: must be whole seconds from %s to %s", ht, MinBGPHoldTime, MaxBGPHoldTime)
	}
	if ka := b.KeepaliveInterval.Duration; ka < time.Second || ka%time.Second != 0 || ka > ht/3 && ht >= MinBGPHoldTime {
		v.addf("bgp.keepalive_interval", "%s: must be whole seconds, at least 1s and at most a third of bgp.hold_time (%s)", ka, ht)
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{{"bgp.hold_down", b.HoldDown.Duration}, {"bgp.drain_deadline", b.DrainDeadline.Duration}} {
		if d.d < 0 || d.d > MaxBGPDuration {
			v.addf(d.key, "%s: must be 0s to %s", d.d, MaxBGPDuration)
		}
	}
	for i, s := range b.InsidePrefixes {
		if _, err := ParseIPv4Prefix(s); err != nil {
			v.add(index("bgp.inside_prefixes", i), err.Error())
		}
	}
	if len(b.InsidePeers) == 0 && len(b.OutsidePeers) == 0 {
		v.add("bgp", "no peers: add [[bgp.inside_peer]] and [[bgp.outside_peer]], or remove [bgp]")
	}
	seen := map[netip.Addr]string{}
	names := map[string]string{}
	check := func(list []BGPPeer, side string) {
		for i, p := range list {
			key := index("bgp."+side+"_peer", i)
			if p.AS == 0 {
				v.add(key+".as", "missing: the peer's AS number")
			}
			if prev, ok := names[p.Name]; ok {
				v.addf(key+".name", "%q is also %s.name: each peer needs its own name", p.Name, prev)
			}
			names[p.Name] = key
			if !v.required(key+".address", p.Address, `the router's address, like "192.0.2.1"`) {
				continue
			}
			a, err := v.unicast(key+".address", p.Address)
			if err != nil {
				continue
			}
			switch prev, ok := seen[a]; {
			case ok:
				v.addf(key+".address", "%s is also %s: a router is an inside or an outside peer, once", a, prev)
			case a == src:
				v.addf(key+".address", "%s is bgp.source_address: a peer is another host", a)
			}
			seen[a] = key + ".address"
		}
	}
	check(b.InsidePeers, "inside")
	check(b.OutsidePeers, "outside")
	v.clusterPeers(b)
}

// clusterPeers checks bgp.cluster_peers: other hosts of the inside
// subnet, each once, not natgw's own address nor a routed prefix's
// router.
func (v *validator) clusterPeers(b *BGP) {
	if len(b.ClusterPeers) > MaxClusterPeers {
		v.addf("bgp.cluster_peers", "%d peers: at most %d", len(b.ClusterPeers), MaxClusterPeers)
	}
	seen := map[netip.Addr]string{}
	for i, s := range b.ClusterPeers {
		key := index("bgp.cluster_peers", i)
		a, ok := v.uniqueAddr(key, s, seen, "list each node once")
		if !ok {
			continue
		}
		if v.inside.IsValid() && !v.inside.Masked().Contains(a) {
			v.addf(key, "%s is not in the inside subnet %s (inside.address): a cluster peer is another node's inside address, on the same link", a, v.inside.Masked())
			continue
		}
		for j, r := range v.c.Inside.Routed {
			if via, err := ParseIPv4(r.Via); err == nil && via == a {
				v.addf(key, "%s is %s.via, a router: a cluster peer is another natgw node", a, index("inside.routed", j))
			}
		}
	}
}
