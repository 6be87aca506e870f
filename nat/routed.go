package nat

// RoutedVias returns the routers of the [[inside.routed]] prefixes, each
// once: natgw resolves them ahead of traffic, and a node behind ECMP is
// announced only once ARP confirmed them (the source check drops a routed
// host's first packets until then).
func (p *Policy) RoutedVias() []uint32 {
	var out []uint32
	seen := map[uint32]bool{}
	for _, r := range p.routed {
		if !seen[r.via] {
			seen[r.via] = true
			out = append(out, r.via)
		}
	}
	return out
}
