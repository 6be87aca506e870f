package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/natgw/natgw/portalloc"
)

// ParseIPv4 parses a dotted-quad IPv4 address ("198.19.1.10"). IPv6 and
// IPv4-mapped IPv6 addresses are refused.
func ParseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address like \"198.19.1.10\"", s)
	}
	return a, nil
}

// ParseIPv4Prefix parses an IPv4 network prefix ("10.0.2.0/28") or a single
// address, which stands for its /32. The prefix must be written as its
// network address: "10.0.2.5/28" is refused, since it is ambiguous whether
// one address or the whole network was meant.
func ParseIPv4Prefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Is4() {
			return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address or prefix", s)
		}
		return netip.PrefixFrom(a, 32), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address or prefix like \"10.0.2.0/28\"", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: write the network, %q, or the single address %q", s, m, p.Addr())
	}
	return p, nil
}

// ParseInterfaceAddress parses a port's own address with the prefix length
// of its subnet ("10.0.0.1/16"). The subnet must be /1 to /31 and the
// address must be a host of it: not the network or broadcast address (a /31
// has neither, RFC 3021).
func ParseInterfaceAddress(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address with prefix length, like \"10.0.0.1/16\"", s)
	}
	if p.Bits() < 1 || p.Bits() > 31 {
		return netip.Prefix{}, fmt.Errorf("%q: the prefix length must be 1 to 31, the length of the link's subnet", s)
	}
	if p.Bits() <= 30 {
		switch p.Addr() {
		case p.Masked().Addr():
			return netip.Prefix{}, fmt.Errorf("%q is the network address of its subnet: give natgw a host address, like %q", s, netip.PrefixFrom(p.Addr().Next(), p.Bits()))
		case lastAddr(p):
			return netip.Prefix{}, fmt.Errorf("%q is the broadcast address of its subnet: give natgw a host address, like %q", s, netip.PrefixFrom(p.Addr().Prev(), p.Bits()))
		}
	}
	return p, nil
}

// ParseMAC parses a unicast Ethernet address ("02:00:00:00:00:01"; the
// other forms net.ParseMAC knows are accepted too).
func ParseMAC(s string) ([6]byte, error) {
	var mac [6]byte
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return mac, fmt.Errorf("%q is not an Ethernet address like \"02:00:00:00:00:01\"", s)
	}
	copy(mac[:], hw)
	if mac[0]&1 != 0 {
		return mac, fmt.Errorf("%q is a multicast or broadcast address: a neighbour needs a unicast address", s)
	}
	if mac == [6]byte{} {
		return mac, fmt.Errorf("%q is the all-zero address: a neighbour needs a real address", s)
	}
	return mac, nil
}

// lastAddr returns the highest address of p (its broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	if p.Bits() == 0 {
		host = ^uint32(0)
	}
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// prefixSize returns the number of addresses in an IPv4 prefix.
func prefixSize(p netip.Prefix) uint64 { return uint64(1) << (32 - p.Bits()) }

// addrUint32 returns a as a host-order uint32, the packet path's form.
func addrUint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// InsidePrefix returns inside.address parsed: natgw's own inside address
// (Addr) with its subnet's length (Masked gives the subnet). It is the zero
// Prefix when inside.address is invalid; call it after Validate.
func (c *Config) InsidePrefix() netip.Prefix {
	p, _ := ParseInterfaceAddress(c.Inside.Address)
	return p
}

// OutsidePrefix returns outside.address parsed, like InsidePrefix.
func (c *Config) OutsidePrefix() netip.Prefix {
	p, _ := ParseInterfaceAddress(c.Outside.Address)
	return p
}

// GatewayAddr returns outside.gateway parsed, or the zero Addr when it is
// invalid; call it after Validate.
func (c *Config) GatewayAddr() netip.Addr {
	a, _ := ParseIPv4(c.Outside.Gateway)
	return a
}

// FrontendAddr returns the address of the frontend called name, and whether
// there is such a frontend with a valid address.
func (c *Config) FrontendAddr(name string) (netip.Addr, bool) {
	for _, f := range c.Frontends {
		if f.Name == name {
			a, err := ParseIPv4(f.Address)
			return a, err == nil
		}
	}
	return netip.Addr{}, false
}

// FrontendAddrs returns the addresses of the named frontends, in order, as
// host-order uint32 (the form portalloc.Layout takes). It fails on a name
// that is not a frontend with a valid address.
func (c *Config) FrontendAddrs(names []string) ([]uint32, error) {
	addrs := make([]uint32, len(names))
	for i, name := range names {
		a, ok := c.FrontendAddr(name)
		if !ok {
			return nil, fmt.Errorf("unknown frontend %q", name)
		}
		addrs[i] = addrUint32(a)
	}
	return addrs, nil
}

// Addr returns the neighbour's address, or the zero Addr when it is
// invalid; call it after Validate.
func (n Neighbor) Addr() netip.Addr {
	a, _ := ParseIPv4(n.Address)
	return a
}

// HardwareAddr returns the neighbour's Ethernet address, or all zeros when
// it is invalid; call it after Validate.
func (n Neighbor) HardwareAddr() [6]byte {
	mac, _ := ParseMAC(n.MAC)
	return mac
}

// Addr returns the frontend's address, or the zero Addr when it is invalid;
// call it after Validate.
func (f Frontend) Addr() netip.Addr {
	a, _ := ParseIPv4(f.Address)
	return a
}

// PrivateAddr returns the instance's private address, or the zero Addr when
// it is invalid; call it after Validate.
func (i Instance) PrivateAddr() netip.Addr {
	a, _ := ParseIPv4(i.Private)
	return a
}

// PublicAddr returns the instance's public address, or the zero Addr when it
// is invalid; call it after Validate.
func (i Instance) PublicAddr() netip.Addr {
	a, _ := ParseIPv4(i.Public)
	return a
}

// InboundRules returns the instance's inbound rules parsed, in order.
func (i Instance) InboundRules() ([]InboundRule, error) {
	rules := make([]InboundRule, len(i.Inbound))
	for j, s := range i.Inbound {
		r, err := ParseInbound(s)
		if err != nil {
			return nil, err
		}
		rules[j] = r
	}
	return rules, nil
}

// MemberPrefixes returns the pool's members parsed, in the order written; a
// single address is its /32.
func (p *Pool) MemberPrefixes() ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, len(p.Members))
	for j, s := range p.Members {
		pre, err := ParseIPv4Prefix(s)
		if err != nil {
			return nil, err
		}
		prefixes[j] = pre
	}
	return prefixes, nil
}

// MemberCount returns the number of member addresses of the pool, counting
// every address of each prefix, without expanding them.
func (p *Pool) MemberCount() (int, error) {
	prefixes, err := p.MemberPrefixes()
	if err != nil {
		return 0, err
	}
	return countAddrs(prefixes), nil
}

// countAddrs returns the number of addresses in prefixes, capped at
// MaxPoolMembers+1 so that a /0 can't overflow.
func countAddrs(prefixes []netip.Prefix) int {
	var n uint64
	for _, pre := range prefixes {
		n += prefixSize(pre)
		if n > portalloc.MaxPoolMembers {
			return portalloc.MaxPoolMembers + 1
		}
	}
	return int(n)
}

// ErrDuplicateMember is returned by MemberAddrs when an address is listed
// twice (directly or through a prefix).
var ErrDuplicateMember = errors.New("member listed twice")

// MemberAddrs returns every member address of the pool, prefixes expanded,
// in the order written. It counts before expanding and fails for a pool over
// portalloc.MaxPoolMembers members, and fails on an address listed twice.
func (p *Pool) MemberAddrs() ([]netip.Addr, error) {
	prefixes, err := p.MemberPrefixes()
	if err != nil {
		return nil, err
	}
	n := countAddrs(prefixes)
	if n > portalloc.MaxPoolMembers {
		return nil, fmt.Errorf("pool %q: %w", p.Name, portalloc.ErrPoolTooLarge)
	}
	addrs := make([]netip.Addr, 0, n)
	seen := make(map[netip.Addr]bool, n)
	for _, pre := range prefixes {
		a := pre.Addr()
		for k := uint64(0); k < prefixSize(pre); k++ {
			if seen[a] {
				return nil, fmt.Errorf("pool %q: %s: %w", p.Name, a, ErrDuplicateMember)
			}
			seen[a] = true
			addrs = append(addrs, a)
			a = a.Next()
		}
	}
	return addrs, nil
}

// BlockSize returns the ports preallocated to each member: ports_per_member
// when set, otherwise the tier table's value for the pool's size [S3].
func (p *Pool) BlockSize() (int, error) {
	if p.PortsPerMember != 0 {
		if err := portalloc.CheckBlockSize(p.PortsPerMember); err != nil {
			return 0, err
		}
		return p.PortsPerMember, nil
	}
	n, err := p.MemberCount()
	if err != nil {
		return 0, err
	}
	return portalloc.TierPorts(n)
}

// SourcePrefixes returns default_snat.sources parsed, in order.
func (d *DefaultSNAT) SourcePrefixes() ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, len(d.Sources))
	for j, s := range d.Sources {
		pre, err := ParseIPv4Prefix(s)
		if err != nil {
			return nil, err
		}
		prefixes[j] = pre
	}
	return prefixes, nil
}

// DenyMatch is a deny rule parsed: outbound packets to Destination with
// Protocol (ProtocolAny for every protocol) and a destination port in Ports
// are dropped. Ports is AllPorts for ICMP and for ProtocolAny.
type DenyMatch struct {
	Destination netip.Prefix
	Protocol    Protocol
	Ports       PortRange
}

// Match returns the rule parsed. An empty protocol is "any" and empty ports
// are "*". Ports other than "*" need protocol tcp or udp: ICMP has no ports,
// and "any" with ports would leave open whether ICMP matches.
func (d DenyRule) Match() (DenyMatch, error) {
	var m DenyMatch
	var err error
	if m.Destination, err = ParseIPv4Prefix(d.Destination); err != nil {
		return DenyMatch{}, fmt.Errorf("destination: %w", err)
	}
	m.Protocol = ProtocolAny
	if d.Protocol != "" {
		if m.Protocol, err = ParseProtocol(d.Protocol); err != nil {
			return DenyMatch{}, fmt.Errorf("protocol: %w", err)
		}
	}
	m.Ports = AllPorts
	if d.Ports != "" {
		if m.Ports, err = ParsePortRange(d.Ports); err != nil {
			return DenyMatch{}, fmt.Errorf("ports: %w", err)
		}
	}
	if err := checkDenyPorts(m.Protocol, m.Ports); err != nil {
		return DenyMatch{}, fmt.Errorf("ports: %w", err)
	}
	return m, nil
}

// checkDenyPorts refuses a port range with a protocol that has no ports.
func checkDenyPorts(proto Protocol, ports PortRange) error {
	if ports.IsAll() {
		return nil
	}
	switch proto {
	case ProtocolICMP:
		return errors.New("icmp has no ports: leave ports out or write \"*\"")
	case ProtocolAny:
		return errors.New("ports need protocol \"tcp\" or \"udp\" (write one rule for each)")
	}
	return nil
}
