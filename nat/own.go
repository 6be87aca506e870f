package nat

import "slices"

// PublicAddrs returns natgw's own addresses on the outside port, sorted:
// the outside address, every frontend and every instance's public
// address. natgw answers ARP for them and announces them with gratuitous
// ARP.
func (p *Policy) PublicAddrs() []uint32 {
	out := make([]uint32, 0, 1+len(p.frontends)+len(p.publics))
	if p.Outside != 0 {
		out = append(out, p.Outside)
	}
	for a := range p.frontends {
		out = append(out, a)
	}
	for a := range p.publics {
		out = append(out, a)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
