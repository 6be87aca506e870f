package nat

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/portalloc"
)

// Scenario is the outbound scenario of a private address [S1].
type Scenario uint8

// The scenarios, in order of precedence after deny rules.
const (
	ScenarioNone Scenario = iota
	ScenarioInstance
	ScenarioPool
	ScenarioDefault
)

// String returns the scenario's name as the API reports it.
func (s Scenario) String() string {
	switch s {
	case ScenarioInstance:
		return "instance"
	case ScenarioPool:
		return "pool"
	case ScenarioDefault:
		return "default"
	}
	return "none"
}

// Scope values stored in Flow.Scope: a pool index below ScopeDefault.
const (
	// ScopeDefault marks a default-SNAT flow.
	ScopeDefault uint16 = 0xFFFE
	// ScopeInstance marks an instance (1:1) flow.
	ScopeInstance uint16 = 0xFFFF
)

// DefaultSNATPoolName is the pool label under which default-SNAT flows are
// counted in metrics.
const DefaultSNATPoolName = "default_snat"

// Mapping is the translation a private address gets: its scenario, its
// public address and the ports it may use.
type Mapping struct {
	Scenario Scenario
	// Scope is the pool index, ScopeDefault or ScopeInstance (Flow.Scope).
	Scope uint16
	// Block is the member's port block; for an instance it spans every port
	// and the source port is preserved.
	Block portalloc.Block
	// Grace holds ports of the member's previous, smaller blocks that its
	// existing flows keep after the pool stepped down a tier [S7]; new flows
	// never take them. Later reloads carry it over while the member's block
	// stays (see graceFor). Empty when Grace.Public is 0.
	Grace portalloc.Block
}

// PoolInfo describes one compiled pool.
type PoolInfo struct {
	Name           string
	Frontends      []netip.Addr
	Members        []netip.Addr
	PortsPerMember int
}

// Instance is one compiled instance-level public address.
type Instance struct {
	Private, Public uint32
	inbound         []portRule
}

// AllowsInbound reports whether an inbound-initiated flow of proto to port
// may reach the instance [S6].
func (in *Instance) AllowsInbound(proto uint8, port uint16) bool {
	for i := range in.inbound {
		if in.inbound[i].matches(proto, port) {
			return true
		}
	}
	return false
}

// portRule matches a protocol (0 = any) and a port range.
type portRule struct {
	proto  uint8
	lo, hi uint16
}

func (r *portRule) matches(proto uint8, port uint16) bool {
	if r.proto != 0 && r.proto != proto {
		return false
	}
	return proto == ProtoICMP || (port >= r.lo && port <= r.hi)
}

type denyRule struct {
	net, mask uint32
	portRule
}

type member struct {
	pool         uint16
	block, grace portalloc.Block
}

type prefix struct{ net, mask uint32 }

// routedPrefix is an inside network behind a router on the inside link.
type routedPrefix struct {
	prefix
	via uint32
}

// Policy is the compiled, immutable form of a configuration: what the
// workers consult to classify and translate. Build it with Compile on the
// management core and hand it to workers by atomic pointer. The only
// mutable state it refers to is the shared default-SNAT assigner, which is
// lock-free.
type Policy struct {
	// Gen is the configuration generation, starting at 1.
	Gen uint32
	// Config is the configuration the policy was compiled from.
	Config *config.Config
	// Timeouts are the idle timeouts of [S5] in ticks.
	Timeouts Timeouts
	// ResetOnIdle sends RSTs when an established TCP flow idles out.
	ResetOnIdle bool
	// HostFlowPercent and InboundFlowPercent are [limits]: the flows one
	// host may have opened, and all flows opened from the outside, as
	// percentages of a worker's flow table (0 or 100: no limit).
	HostFlowPercent, InboundFlowPercent int
	// Pools are the compiled pools, indexed by Flow.Scope.
	Pools []PoolInfo

	// Inside and Outside are natgw's own addresses; Gateway the next hop.
	Inside, Outside, Gateway uint32
	// InsidePrefix and OutsidePrefix are the attached subnets.
	InsidePrefix, OutsidePrefix netip.Prefix
	// SourceCheck is inside.source_check: the runtime checks the source
	// of every new outbound flow (TranslatorOptions.SourceCheck).
	SourceCheck bool

	insideNet prefix
	routed    []routedPrefix

	deny        []denyRule
	instances   map[uint32]*Instance // by private address
	publics     map[uint32]*Instance // instance by public address
	frontends   map[uint32]bool      // every frontend address
	members     map[uint32]member
	defaultSrc  []prefix
	defaultSNAT *portalloc.DefaultSNAT
	defaultCfg  portalloc.DefaultSNATConfig
}

func sameDefaultSNAT(a, b portalloc.DefaultSNATConfig) bool {
	return slices.Equal(a.Frontends, b.Frontends) && a.PortsPerMember == b.PortsPerMember &&
		a.Workers == b.Workers && a.Addresses == b.Addresses
}

// Compile builds the policy of a validated configuration. prev is the
// running policy or nil; members keep their blocks where they can [S7] and
// the default-SNAT assignments survive when default_snat is unchanged.
func Compile(c *config.Config, prev *Policy) (*Policy, error) {
	p := &Policy{
		Gen:                1,
		Config:             c,
		ResetOnIdle:        c.Timeouts.TCPResetOnIdle,
		HostFlowPercent:    c.Limits.HostFlowPercent,
		InboundFlowPercent: c.Limits.InboundFlowPercent,
		Timeouts: Timeouts{
			TCPEstablished: TickFromDuration(c.Timeouts.TCPEstablished.Duration),
			TCPTransitory:  TickFromDuration(c.Timeouts.TCPTransitory.Duration),
			TCPClosing:     TickFromDuration(c.Timeouts.TCPClosing.Duration),
			UDP:            TickFromDuration(c.Timeouts.UDP.Duration),
			ICMP:           TickFromDuration(c.Timeouts.ICMP.Duration),
		},
		instances: make(map[uint32]*Instance),
		publics:   make(map[uint32]*Instance),
		frontends: make(map[uint32]bool),
		members:   make(map[uint32]member),
	}
	if prev != nil {
		p.Gen = prev.Gen + 1
	}
	var err error
	if p.InsidePrefix, err = netip.ParsePrefix(c.Inside.Address); err != nil {
		return nil, fmt.Errorf("inside.address: %w", err)
	}
	if p.OutsidePrefix, err = netip.ParsePrefix(c.Outside.Address); err != nil {
		return nil, fmt.Errorf("outside.address: %w", err)
	}
	p.Inside, p.Outside = U32(p.InsidePrefix.Addr()), U32(p.OutsidePrefix.Addr())
	p.insideNet = prefixOf(p.InsidePrefix)
	p.SourceCheck = c.Inside.SourceCheckOn()
	for i, r := range c.Inside.Routed {
		pf, err := netip.ParsePrefix(r.Prefix)
		if err != nil {
			return nil, fmt.Errorf("inside.routed[%d].prefix: %w", i, err)
		}
		via, err := netip.ParseAddr(r.Via)
		if err != nil {
			return nil, fmt.Errorf("inside.routed[%d].via: %w", i, err)
		}
		p.routed = append(p.routed, routedPrefix{prefix: prefixOf(pf), via: U32(via)})
	}
	gw, err := netip.ParseAddr(c.Outside.Gateway)
	if err != nil {
		return nil, fmt.Errorf("outside.gateway: %w", err)
	}
	p.Gateway = U32(gw)

	feAddr := make(map[string]uint32, len(c.Frontends))
	for i, fe := range c.Frontends {
		a, err := netip.ParseAddr(fe.Address)
		if err != nil {
			return nil, fmt.Errorf("frontend[%d].address: %w", i, err)
		}
		feAddr[fe.Name] = U32(a)
		p.frontends[U32(a)] = true
	}
	frontendsOf := func(key string, names []string) ([]uint32, []netip.Addr, error) {
		u := make([]uint32, len(names))
		a := make([]netip.Addr, len(names))
		for i, n := range names {
			v, ok := feAddr[n]
			if !ok {
				return nil, nil, fmt.Errorf("%s.frontends: unknown frontend %q", key, n)
			}
			u[i], a[i] = v, AddrFrom(v)
		}
		return u, a, nil
	}

	for i := range c.Pools {
		pc := &c.Pools[i]
		key := fmt.Sprintf("pool[%d]", i)
		fes, feAddrs, err := frontendsOf(key, pc.Frontends)
		if err != nil {
			return nil, err
		}
		addrs, err := pc.MemberAddrs()
		if err != nil {
			return nil, fmt.Errorf("%s.members: %w", key, err)
		}
		size := pc.PortsPerMember
		if size == 0 {
			if size, err = portalloc.TierPorts(len(addrs)); err != nil {
				return nil, fmt.Errorf("%s.members: %w", key, err)
			}
		}
		old := make([]portalloc.Block, len(addrs))
		if prev != nil {
			for j, a := range addrs {
				if m, ok := prev.members[U32(a)]; ok {
					old[j] = m.block
				}
			}
		}
		blocks, err := portalloc.LayoutStable(fes, size, old)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		for j, a := range addrs {
			m := member{pool: uint16(i), block: blocks[j]}
			if prev != nil {
				if pm, ok := prev.members[U32(a)]; ok {
					m.grace = graceFor(pm, blocks[j])
				}
			}
			p.members[U32(a)] = m
		}
		p.Pools = append(p.Pools, PoolInfo{Name: pc.Name, Frontends: feAddrs, Members: addrs, PortsPerMember: size})
	}
	if len(p.Pools) >= int(ScopeDefault) {
		return nil, fmt.Errorf("pool: %d pools is more than natgw supports", len(p.Pools))
	}

	for i := range c.Instances {
		ic := &c.Instances[i]
		key := fmt.Sprintf("instance[%d]", i)
		priv, err := netip.ParseAddr(ic.Private)
		if err != nil {
			return nil, fmt.Errorf("%s.private: %w", key, err)
		}
		pub, err := netip.ParseAddr(ic.Public)
		if err != nil {
			return nil, fmt.Errorf("%s.public: %w", key, err)
		}
		in := &Instance{Private: U32(priv), Public: U32(pub)}
		for j, s := range ic.Inbound {
			r, err := config.ParseInbound(s)
			if err != nil {
				return nil, fmt.Errorf("%s.inbound[%d]: %w", key, j, err)
			}
			in.inbound = append(in.inbound, portRule{proto: uint8(r.Protocol), lo: r.Ports.Lo, hi: r.Ports.Hi})
		}
		p.instances[in.Private] = in
		p.publics[in.Public] = in
	}

	if d := c.DefaultSNAT; d != nil {
		for i, s := range d.Sources {
			pf, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("default_snat.sources[%d]: %w", i, err)
			}
			p.defaultSrc = append(p.defaultSrc, prefixOf(pf))
		}
		fes, _, err := frontendsOf("default_snat", d.Frontends)
		if err != nil {
			return nil, err
		}
		p.defaultCfg = portalloc.DefaultSNATConfig{Frontends: fes, PortsPerMember: d.PortsPerMember, Workers: c.Dataplane.Workers}
		if prev != nil && prev.defaultSNAT != nil && sameDefaultSNAT(prev.defaultCfg, p.defaultCfg) {
			p.defaultSNAT = prev.defaultSNAT // assignments survive the reload
		} else if p.defaultSNAT, err = portalloc.NewDefaultSNAT(p.defaultCfg); err != nil {
			return nil, fmt.Errorf("default_snat: %w", err)
		}
	}

	for i, dc := range c.Deny {
		r, err := dc.Match()
		if err != nil {
			return nil, fmt.Errorf("deny[%d]: %w", i, err)
		}
		pf := prefixOf(r.Destination)
		p.deny = append(p.deny, denyRule{net: pf.net, mask: pf.mask,
			portRule: portRule{proto: uint8(r.Protocol), lo: r.Ports.Lo, hi: r.Ports.Hi}})
	}
	return p, nil
}

// graceFor returns the grace block of a member whose block was pm.block,
// with grace pm.grace, and is now nb [S7]: the ports its existing flows
// may hold that nb does not contain. Its flows hold ports of its previous
// block or of its previous grace (new flows take ports of the block only),
// so the grace is whichever of the two nb does not contain; when both lie
// outside nb on the same address, one range covering both. It is empty
// when nb is smaller than the previous block: a pool that steps up a tier
// reclaims the ports outside the new blocks [S7].
//
// So a grace block lasts until it is no longer needed: until the member's
// block contains it, shrinks, or the member leaves. Every other reload,
// however many, carries it over unchanged, and with it the flows it keeps.
// It can outlive the last flow that uses it; that costs nothing, because
// no new flow of the member takes a grace port, and another member whose
// block now holds those ports is kept off a port still in use towards a
// destination by the flow table's public 5-tuple index, as for any port.
// The one loss: after a second step down that moves the block to another
// frontend than both the previous block and the previous grace, only the
// previous block is kept (a grace is one range on one address).
func graceFor(pm member, nb portalloc.Block) portalloc.Block {
	if pm.block.Public == 0 || nb.Size() < pm.block.Size() {
		return portalloc.Block{}
	}
	inside := func(b portalloc.Block) bool {
		return b.Public == 0 || (b.Public == nb.Public && nb.Contains(b.First) && nb.Contains(b.Last))
	}
	ob, og := pm.block, pm.grace
	switch {
	case inside(ob) && inside(og):
		return portalloc.Block{}
	case inside(og):
		return ob
	case inside(ob):
		return og
	case ob.Public == og.Public:
		return portalloc.Block{Public: ob.Public, First: min(ob.First, og.First), Last: max(ob.Last, og.Last)}
	}
	return ob
}

// Denied reports whether a deny rule blocks outbound traffic to remote
// [S1]. port is the destination port (ignored for ICMP).
func (p *Policy) Denied(remote uint32, proto uint8, port uint16) bool {
	for i := range p.deny {
		r := &p.deny[i]
		if remote&r.mask == r.net && r.matches(proto, port) {
			return true
		}
	}
	return false
}

// Classify returns the mapping of a private address with the precedence of
// [S1]: instance, pool, default SNAT. It never assigns: a default-SNAT
// source without a block yet gets ScenarioDefault with an empty Block
// (Block.Public == 0); the packet path then acquires one. It returns
// DropNoScenario when no scenario applies.
func (p *Policy) Classify(priv uint32) (Mapping, Verdict) {
	if in, ok := p.instances[priv]; ok {
		return Mapping{Scenario: ScenarioInstance, Scope: ScopeInstance,
			Block: portalloc.Block{Public: in.Public, First: 0, Last: 0xFFFF}}, VerdictForward
	}
	if m, ok := p.members[priv]; ok {
		return Mapping{Scenario: ScenarioPool, Scope: m.pool, Block: m.block, Grace: m.grace}, VerdictForward
	}
	if p.defaultSNAT != nil && p.inDefaultSources(priv) {
		m := Mapping{Scenario: ScenarioDefault, Scope: ScopeDefault}
		m.Block, _ = p.defaultSNAT.Lookup(priv)
		return m, VerdictForward
	}
	return Mapping{}, DropNoScenario
}

func (p *Policy) inDefaultSources(a uint32) bool {
	for _, s := range p.defaultSrc {
		if a&s.mask == s.net {
			return true
		}
	}
	return false
}

// InsideNextHop returns the neighbour on the inside link that frames
// from private address src come from: src itself when it is on the inside
// link, the router of the routed prefix that holds it, or false when src
// belongs to neither (a spoofed source).
func (p *Policy) InsideNextHop(src uint32) (uint32, bool) {
	if src&p.insideNet.mask == p.insideNet.net {
		return src, src != p.Inside
	}
	for i := range p.routed {
		if r := &p.routed[i]; src&r.mask == r.net {
			return r.via, true
		}
	}
	return 0, false
}

// InstanceByPublic returns the instance that owns a public address.
func (p *Policy) InstanceByPublic(pub uint32) (*Instance, bool) {
	in, ok := p.publics[pub]
	return in, ok
}

// IsPublic reports whether addr is one of natgw's public addresses on the
// outside: its outside address, a frontend or an instance's public address.
// These are the addresses natgw answers ARP for on the outside port.
func (p *Policy) IsPublic(addr uint32) bool {
	if addr == p.Outside || p.frontends[addr] {
		return true
	}
	_, ok := p.publics[addr]
	return ok
}

// DefaultSNAT returns the shared default-SNAT assigner, or nil.
func (p *Policy) DefaultSNAT() *portalloc.DefaultSNAT { return p.defaultSNAT }

// PoolName returns the metric label of a scope.
func (p *Policy) PoolName(scope uint16) string {
	switch {
	case scope == ScopeDefault:
		return DefaultSNATPoolName
	case scope == ScopeInstance:
		return "instance"
	case int(scope) < len(p.Pools):
		return p.Pools[scope].Name
	}
	return "unknown"
}

// ChangedMembers lists the pool members whose block differs between old and
// p, members that left included: their flows on ports outside the new block
// are reclaimed [S7]. Members whose block is unchanged keep all their flows.
func (p *Policy) ChangedMembers(old *Policy) []netip.Addr {
	if old == nil {
		return nil
	}
	var changed []netip.Addr
	for a, om := range old.members {
		if nm, ok := p.members[a]; !ok || nm.block != om.block {
			changed = append(changed, AddrFrom(a))
		}
	}
	slices.SortFunc(changed, netip.Addr.Compare)
	return changed
}

// PolicyHolder publishes the running policy to workers: the management core
// stores, workers load between bursts.
type PolicyHolder struct{ p atomic.Pointer[Policy] }

// Load returns the running policy (nil before the first Store).
func (h *PolicyHolder) Load() *Policy { return h.p.Load() }

// Store publishes a new policy.
func (h *PolicyHolder) Store(p *Policy) { h.p.Store(p) }

// U32 converts an IPv4 address to its host-order integer (0 for anything
// else).
func U32(a netip.Addr) uint32 {
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// AddrFrom converts a host-order integer to an IPv4 netip.Addr.
func AddrFrom(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func prefixOf(pf netip.Prefix) prefix {
	pf = pf.Masked()
	var mask uint32
	if bits := pf.Bits(); bits > 0 {
		mask = ^uint32(0) << (32 - bits)
	}
	return prefix{net: U32(pf.Addr()), mask: mask}
}
