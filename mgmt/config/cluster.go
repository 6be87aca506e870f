package config

import (
	"fmt"
	"net/netip"
)

// Node is one node's configuration in a cluster check, with the name
// (usually the file) problems are reported under.
type Node struct {
	Name   string
	Config *Config
}

// CheckCluster checks several node configurations (each valid on its
// own) together, for nodes that run side by side behind ECMP (issue 17):
// nodes share no state, so every public address (outside address,
// frontend, instance public) must belong to one node only, or two nodes
// could hand out the same public 5-tuple and return traffic would reach
// the wrong one; natgw's inside addresses, BGP source addresses and
// router ids must differ too, and either every node has [bgp] or none.
// It returns Errors naming node and key, or nil.
func CheckCluster(nodes []Node) error {
	var p problems
	type owner struct{ node, key string }
	publics := map[netip.Addr]owner{}
	insides := map[netip.Addr]owner{}
	sources := map[netip.Addr]owner{}
	ids := map[netip.Addr]owner{}
	claim := func(m map[netip.Addr]owner, a netip.Addr, node, key, what string) {
		if !a.IsValid() {
			return
		}
		if o, ok := m[a]; ok && o.node != node {
			p.errs = append(p.errs, &FieldError{Source: node, Key: key, Msg: fmt.Sprintf("%s is also %s of %s: %s", a, o.key, o.node, what)})
			return
		}
		m[a] = owner{node, key}
	}
	const publicWhy = "each public address must belong to one node, or two nodes may hand out the same public 5-tuple and replies reach the wrong node"
	withBGP := 0
	for _, n := range nodes {
		c := n.Config
		if pfx, err := ParseInterfaceAddress(c.Outside.Address); err == nil {
			claim(publics, pfx.Addr(), n.Name, "outside.address", publicWhy)
		}
		if pfx, err := ParseInterfaceAddress(c.Inside.Address); err == nil {
			claim(insides, pfx.Addr(), n.Name, "inside.address", "each node needs its own inside address (the next hop the inside router spreads flows over)")
		}
		for i, f := range c.Frontends {
			if a, err := ParseIPv4(f.Address); err == nil {
				claim(publics, a, n.Name, index("frontend", i)+".address", publicWhy)
			}
		}
		for i, in := range c.Instances {
			if a, err := ParseIPv4(in.Public); err == nil {
				claim(publics, a, n.Name, index("instance", i)+".public", publicWhy)
			}
		}
		if b := c.BGP; b != nil {
			withBGP++
			claim(sources, b.Source(), n.Name, "bgp.source_address", "each node's sessions need their own address")
			claim(ids, b.ID(), n.Name, "bgp.router_id", "each node needs its own BGP identifier")
		}
	}
	if withBGP != 0 && withBGP != len(nodes) {
		for _, n := range nodes {
			if n.Config.BGP == nil {
				p.errs = append(p.errs, &FieldError{Source: n.Name, Key: "bgp", Msg: "missing: the other nodes announce themselves by BGP, this one would never be in ECMP"})
			}
		}
	}
	return p.err()
}
