package mgmt

import (
	"fmt"
	"net/netip"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// This file turns a configuration into the policy description nat
// compiles: the one path from config.Config to nat.Policy, taken by
// start-up (app) and by every reload (Reloader) alike. It runs on the
// management core.

// CompilePolicy converts a validated configuration with PolicySpec and
// compiles it against the running policy prev (nil at start-up).
func CompilePolicy(c *config.Config, prev *nat.Policy) (*nat.Policy, error) {
	s, err := PolicySpec(c)
	if err != nil {
		return nil, err
	}
	return nat.Compile(s, prev)
}

// PolicySpec converts a validated configuration into the description
// nat.Compile takes: addresses parsed, frontend names resolved, pool
// member prefixes expanded, rules parsed, durations in ticks. Errors name
// the configuration key; Validate reports them better, so they only
// happen for a configuration that was not validated.
func PolicySpec(c *config.Config) (nat.PolicySpec, error) {
	s := nat.PolicySpec{
		SourceCheck: c.Inside.SourceCheckOn(),
		Timeouts: nat.Timeouts{
			TCPEstablished: nat.TickFromDuration(c.Timeouts.TCPEstablished.Duration),
			TCPTransitory:  nat.TickFromDuration(c.Timeouts.TCPTransitory.Duration),
			TCPClosing:     nat.TickFromDuration(c.Timeouts.TCPClosing.Duration),
			UDP:            nat.TickFromDuration(c.Timeouts.UDP.Duration),
			ICMP:           nat.TickFromDuration(c.Timeouts.ICMP.Duration),
		},
		ResetOnIdle:        c.Timeouts.TCPResetOnIdle,
		SessionEvents:      c.NatLog.Exports("sessions"),
		HostFlowPercent:    c.Limits.HostFlowPercent,
		InboundFlowPercent: c.Limits.InboundFlowPercent,
	}
	var err error
	if s.Inside, err = specPrefix(c.Inside.Address); err != nil {
		return nat.PolicySpec{}, fmt.Errorf("inside.address: %w", err)
	}
	if s.Outside, err = specPrefix(c.Outside.Address); err != nil {
		return nat.PolicySpec{}, fmt.Errorf("outside.address: %w", err)
	}
	if s.Gateway, err = specAddr(c.Outside.Gateway); err != nil {
		return nat.PolicySpec{}, fmt.Errorf("outside.gateway: %w", err)
	}
	if s.Routed, err = specRouted(c.Inside.Routed); err != nil {
		return nat.PolicySpec{}, err
	}
	if c.BGP != nil {
		for _, a := range c.BGP.ClusterPeerAddrs() {
			s.ClusterPeers = append(s.ClusterPeers, nat.U32(a))
		}
	}
	fe := make(map[string]uint32, len(c.Frontends))
	for i, f := range c.Frontends {
		a, err := specAddr(f.Address)
		if err != nil {
			return nat.PolicySpec{}, fmt.Errorf("frontend[%d].address: %w", i, err)
		}
		fe[f.Name] = a
		s.Frontends = append(s.Frontends, a)
		if f.Drain {
			s.Drain.Frontends = append(s.Drain.Frontends, a)
		}
	}
	s.Drain.Reclaim = c.Reload.Drains()
	s.Drain.Deadline = nat.TickFromDuration(c.Reload.ReclaimDeadline.Duration)
	if s.Pools, err = specPools(c.Pools, fe); err != nil {
		return nat.PolicySpec{}, err
	}
	if s.Instances, err = specInstances(c.Instances); err != nil {
		return nat.PolicySpec{}, err
	}
	for i, ic := range c.Instances {
		if ic.Drain {
			s.Drain.Instances = append(s.Drain.Instances, s.Instances[i].Public)
		}
	}
	if s.DefaultSNAT, err = specDefaultSNAT(c.DefaultSNAT, fe, c.Dataplane.Workers); err != nil {
		return nat.PolicySpec{}, err
	}
	if s.Deny, err = specDeny(c.Deny); err != nil {
		return nat.PolicySpec{}, err
	}
	return s, nil
}

func specRouted(routed []config.RoutedPrefix) ([]nat.RoutedPrefix, error) {
	var out []nat.RoutedPrefix
	for i, r := range routed {
		pf, err := specPrefix(r.Prefix)
		if err != nil {
			return nil, fmt.Errorf("inside.routed[%d].prefix: %w", i, err)
		}
		via, err := specAddr(r.Via)
		if err != nil {
			return nil, fmt.Errorf("inside.routed[%d].via: %w", i, err)
		}
		out = append(out, nat.RoutedPrefix{Prefix: pf, Via: via})
	}
	return out, nil
}

func specPools(pools []config.Pool, fe map[string]uint32) ([]nat.PoolSpec, error) {
	var out []nat.PoolSpec
	for i := range pools {
		pc := &pools[i]
		key := fmt.Sprintf("pool[%d]", i)
		fes, err := frontendAddrs(key, pc.Frontends, fe)
		if err != nil {
			return nil, err
		}
		members, err := pc.MemberAddrs()
		if err != nil {
			return nil, fmt.Errorf("%s.members: %w", key, err)
		}
		ps := nat.PoolSpec{Name: pc.Name, Frontends: fes, PortsPerMember: pc.PortsPerMember,
			Members:            make([]uint32, len(members)),
			RejectOnExhaustion: pc.OnExhaustion == config.OnExhaustionReject}
		ps.Mapping, ps.Filtering = specBehaviour(pc.Mapping, pc.Filtering)
		for j, a := range members {
			ps.Members[j] = nat.U32(a)
		}
		out = append(out, ps)
	}
	return out, nil
}

func specInstances(instances []config.Instance) ([]nat.InstanceSpec, error) {
	var out []nat.InstanceSpec
	for i := range instances {
		ic := &instances[i]
		key := fmt.Sprintf("instance[%d]", i)
		var in nat.InstanceSpec
		var err error
		if in.Private, err = specAddr(ic.Private); err != nil {
			return nil, fmt.Errorf("%s.private: %w", key, err)
		}
		if in.Public, err = specAddr(ic.Public); err != nil {
			return nil, fmt.Errorf("%s.public: %w", key, err)
		}
		for j, text := range ic.Inbound {
			r, err := config.ParseInbound(text)
			if err != nil {
				return nil, fmt.Errorf("%s.inbound[%d]: %w", key, j, err)
			}
			in.Inbound = append(in.Inbound, nat.PortRule{Proto: uint8(r.Protocol), Lo: r.Ports.Lo, Hi: r.Ports.Hi})
		}
		out = append(out, in)
	}
	return out, nil
}

func specDefaultSNAT(d *config.DefaultSNAT, fe map[string]uint32, workers int) (*nat.DefaultSNATSpec, error) {
	if d == nil {
		return nil, nil
	}
	out := &nat.DefaultSNATSpec{PortsPerMember: d.PortsPerMember, Workers: workers, ReclaimIdle: d.ReclaimIdle.Duration}
	out.Mapping, out.Filtering = specBehaviour(d.Mapping, d.Filtering)
	for i, text := range d.Sources {
		pf, err := specPrefix(text)
		if err != nil {
			return nil, fmt.Errorf("default_snat.sources[%d]: %w", i, err)
		}
		out.Sources = append(out.Sources, pf)
	}
	var err error
	if out.Frontends, err = frontendAddrs("default_snat", d.Frontends, fe); err != nil {
		return nil, err
	}
	return out, nil
}

func specDeny(rules []config.DenyRule) ([]nat.DenyRule, error) {
	var out []nat.DenyRule
	for i, dc := range rules {
		r, err := dc.Match()
		if err != nil {
			return nil, fmt.Errorf("deny[%d]: %w", i, err)
		}
		out = append(out, nat.DenyRule{
			Destination: nat.Prefix{Addr: nat.U32(r.Destination.Addr()), Bits: r.Destination.Bits()},
			PortRule:    nat.PortRule{Proto: uint8(r.Protocol), Lo: r.Ports.Lo, Hi: r.Ports.Hi},
		})
	}
	return out, nil
}

// frontendAddrs resolves the frontend names of key.frontends.
func frontendAddrs(key string, names []string, fe map[string]uint32) ([]uint32, error) {
	out := make([]uint32, len(names))
	for i, n := range names {
		a, ok := fe[n]
		if !ok {
			return nil, fmt.Errorf("%s.frontends: unknown frontend %q", key, n)
		}
		out[i] = a
	}
	return out, nil
}

// specPrefix parses an IPv4 address with a prefix length, keeping the
// host bits ("10.0.0.1/16" is natgw's address on a /16).
func specPrefix(text string) (nat.Prefix, error) {
	pf, err := netip.ParsePrefix(text)
	if err != nil {
		return nat.Prefix{}, err
	}
	if !pf.Addr().Is4() {
		return nat.Prefix{}, fmt.Errorf("%s is not an IPv4 prefix", text)
	}
	return nat.Prefix{Addr: nat.U32(pf.Addr()), Bits: pf.Bits()}, nil
}

// specAddr parses an IPv4 address.
func specAddr(text string) (uint32, error) {
	a, err := netip.ParseAddr(text)
	if err != nil {
		return 0, err
	}
	if !a.Is4() {
		return 0, fmt.Errorf("%s is not an IPv4 address", text)
	}
	return nat.U32(a), nil
}

// specBehaviour converts validated mapping and filtering keys.
func specBehaviour(mapping, filtering string) (nat.MappingMode, nat.FilteringMode) {
	m := nat.MappingAddressPortDependent
	if config.EndpointIndependent(mapping) {
		m = nat.MappingEndpointIndependent
	}
	f := nat.FilteringAddressPortDependent
	switch filtering {
	case config.FilteringAddressDependent:
		f = nat.FilteringAddressDependent
	case config.FilteringEndpointIndependent:
		f = nat.FilteringEndpointIndependent
	}
	return m, f
}
