package nat

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"time"

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
	// RejectOnExhaustion is PoolSpec.RejectOnExhaustion.
	RejectOnExhaustion bool
	// Mapping and Filtering are PoolSpec.Mapping and PoolSpec.Filtering.
	Mapping   MappingMode
	Filtering FilteringMode
}

// Instance is one compiled instance-level public address.
type Instance struct {
	Private, Public uint32
	inbound         []PortRule
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

func (r *PortRule) matches(proto uint8, port uint16) bool {
	if r.Proto != 0 && r.Proto != proto {
		return false
	}
	return proto == ProtoICMP || (port >= r.Lo && port <= r.Hi)
}

// denyRule is a compiled DenyRule.
type denyRule struct {
	subnet
	PortRule
}

type member struct {
	pool         uint16
	block, grace portalloc.Block
}

// subnet is a compiled Prefix: an address a matches it when
// a&mask == net.
type subnet struct{ net, mask uint32 }

// route is a compiled RoutedPrefix.
type route struct {
	subnet
	via uint32
}

// Policy is the compiled, immutable form of a PolicySpec: what the
// workers consult to classify and translate. Build it with Compile on the
// management core and hand it to workers by atomic pointer. The only
// mutable state it refers to is the shared default-SNAT assigner, which is
// lock-free.
type Policy struct {
	// Gen is the configuration generation, starting at 1.
	Gen uint32
	// Timeouts are the idle timeouts of [S5] in ticks.
	Timeouts Timeouts
	// ResetOnIdle sends RSTs when an established TCP flow idles out.
	ResetOnIdle bool
	// SessionEvents asks workers to report flows created and deleted.
	SessionEvents bool
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
	// ClusterPeers are the other cluster nodes' inside addresses
	// (PolicySpec.ClusterPeers).
	ClusterPeers []uint32

	insideNet subnet
	routed    []route

	deny        []denyRule
	instances   map[uint32]*Instance // by private address
	publics     map[uint32]*Instance // instance by public address
	frontends   map[uint32]bool      // every frontend address
	members     map[uint32]member
	defaultSrc  []subnet
	defaultSNAT *portalloc.DefaultSNAT
	defaultCfg  portalloc.DefaultSNATConfig
	// defaultIdle is DefaultSNATSpec.ReclaimIdle.
	defaultIdle time.Duration
	// ready is what each translator attached to the holder that
	// published the policy takes when it switches to it (prepare.go).
	ready []prepared
	// defaultMapping and defaultFiltering are default SNAT's mapping
	// behaviour; eim says some scope maps endpoint independently (eim.go).
	defaultMapping   MappingMode
	defaultFiltering FilteringMode
	eim              bool
	// eimPubs are the public addresses of endpoint-independent scopes:
	// an inbound miss to one of them may belong to another worker's
	// mapping (eim.go).
	eimPubs map[uint32]bool
	drain   drainPolicy // drain.go
}

func sameDefaultSNAT(a, b portalloc.DefaultSNATConfig) bool {
	return slices.Equal(a.Frontends, b.Frontends) && a.PortsPerMember == b.PortsPerMember &&
		a.Workers == b.Workers && a.Addresses == b.Addresses
}

// Compile builds the policy that s describes. prev is the running policy
// or nil: the new policy's generation follows prev's, pool members keep
// their blocks where they can [S7], and the default-SNAT assignments
// survive when default SNAT is unchanged. Compile runs on the management
// core; it fails on a description it can't lay out, never on a valid
// configuration's.
func Compile(s PolicySpec, prev *Policy) (*Policy, error) {
	p := &Policy{
		Gen:                1,
		Timeouts:           s.Timeouts,
		ResetOnIdle:        s.ResetOnIdle,
		SessionEvents:      s.SessionEvents,
		HostFlowPercent:    s.HostFlowPercent,
		InboundFlowPercent: s.InboundFlowPercent,
		Gateway:            s.Gateway,
		SourceCheck:        s.SourceCheck,
		ClusterPeers:       slices.Clone(s.ClusterPeers),
		drain:              compileDrain(s.Drain),
	}
	if prev != nil {
		p.Gen = prev.Gen + 1
	}
	if err := p.compileAddresses(&s); err != nil {
		return nil, err
	}
	if err := p.compilePools(s.Pools, prev); err != nil {
		return nil, err
	}
	if err := p.compileDefaultSNAT(s.DefaultSNAT, prev); err != nil {
		return nil, err
	}
	if err := p.compileDeny(s.Deny); err != nil {
		return nil, err
	}
	p.compileInstances(s.Instances)
	p.drainInstances()
	return p, nil
}

// compileAddresses sets natgw's own addresses, its inside routes and the
// frontend set.
func (p *Policy) compileAddresses(s *PolicySpec) error {
	var err error
	if p.InsidePrefix, p.insideNet, err = s.Inside.compile(); err != nil {
		return fmt.Errorf("inside: %w", err)
	}
	if p.OutsidePrefix, _, err = s.Outside.compile(); err != nil {
		return fmt.Errorf("outside: %w", err)
	}
	p.Inside, p.Outside = s.Inside.Addr, s.Outside.Addr
	for i, r := range s.Routed {
		_, sn, err := r.Prefix.compile()
		if err != nil {
			return fmt.Errorf("routed[%d]: %w", i, err)
		}
		p.routed = append(p.routed, route{subnet: sn, via: r.Via})
	}
	p.frontends = make(map[uint32]bool, len(s.Frontends))
	for _, a := range s.Frontends {
		p.frontends[a] = true
	}
	return nil
}

// compilePools lays out every pool's blocks, keeping each member's block
// of prev where it can, and derives the grace blocks (graceFor).
func (p *Policy) compilePools(pools []PoolSpec, prev *Policy) error {
	if len(pools) >= int(ScopeDefault) {
		return fmt.Errorf("pool: %d pools is more than natgw supports", len(pools))
	}
	p.members = make(map[uint32]member)
	for i := range pools {
		ps := &pools[i]
		size := ps.PortsPerMember
		if size == 0 {
			var err error
			if size, err = portalloc.TierPorts(len(ps.Members)); err != nil {
				return fmt.Errorf("pool[%d].members: %w", i, err)
			}
		}
		old := make([]portalloc.Block, len(ps.Members))
		for j, a := range ps.Members {
			pm, _ := prev.member(a)
			old[j] = pm.block
		}
		blocks, err := portalloc.LayoutDraining(ps.Frontends, p.FrontendDraining, size, old)
		if err != nil {
			return fmt.Errorf("pool[%d]: %w", i, err)
		}
		for j, a := range ps.Members {
			m := member{pool: uint16(i), block: blocks[j]}
			if pm, ok := prev.member(a); ok {
				m.grace = graceFor(pm, blocks[j])
			}
			p.members[a] = m
		}
		p.Pools = append(p.Pools, PoolInfo{Name: ps.Name, Frontends: addrsFrom(ps.Frontends),
			Members: addrsFrom(ps.Members), PortsPerMember: size, RejectOnExhaustion: ps.RejectOnExhaustion,
			Mapping: ps.Mapping, Filtering: ps.Filtering})
		if ps.Mapping == MappingEndpointIndependent {
			p.addEIMPublics(ps.Frontends)
		}
	}
	return nil
}

// member returns the pool member a of p, which may be nil.
func (p *Policy) member(a uint32) (member, bool) {
	if p == nil {
		return member{}, false
	}
	m, ok := p.members[a]
	return m, ok
}

// compileDefaultSNAT sets default SNAT up; the assigner of prev, with its
// assignments, is kept when d describes the same one.
func (p *Policy) compileDefaultSNAT(d *DefaultSNATSpec, prev *Policy) error {
	if d == nil {
		return nil
	}
	for i, pf := range d.Sources {
		_, sn, err := pf.compile()
		if err != nil {
			return fmt.Errorf("default_snat.sources[%d]: %w", i, err)
		}
		p.defaultSrc = append(p.defaultSrc, sn)
	}
	p.defaultMapping, p.defaultFiltering = d.Mapping, d.Filtering
	p.defaultIdle = d.ReclaimIdle
	if d.Mapping == MappingEndpointIndependent {
		p.addEIMPublics(d.Frontends)
	}
	p.defaultCfg = portalloc.DefaultSNATConfig{Frontends: slices.Clone(d.Frontends),
		PortsPerMember: d.PortsPerMember, Workers: d.Workers}
	if prev != nil && prev.defaultSNAT != nil && sameDefaultSNAT(prev.defaultCfg, p.defaultCfg) {
		p.defaultSNAT = prev.defaultSNAT // assignments survive the reload
		return nil
	}
	var err error
	if p.defaultSNAT, err = portalloc.NewDefaultSNAT(p.defaultCfg); err != nil {
		return fmt.Errorf("default_snat: %w", err)
	}
	return nil
}

// compileInstances indexes the instances by private and by public
// address.
func (p *Policy) compileInstances(instances []InstanceSpec) {
	p.instances = make(map[uint32]*Instance, len(instances))
	p.publics = make(map[uint32]*Instance, len(instances))
	for _, is := range instances {
		in := &Instance{Private: is.Private, Public: is.Public, inbound: slices.Clone(is.Inbound)}
		p.instances[in.Private] = in
		p.publics[in.Public] = in
	}
}

// compileDeny compiles the deny rules.
func (p *Policy) compileDeny(rules []DenyRule) error {
	for i, r := range rules {
		_, sn, err := r.Destination.compile()
		if err != nil {
			return fmt.Errorf("deny[%d].destination: %w", i, err)
		}
		p.deny = append(p.deny, denyRule{subnet: sn, PortRule: r.PortRule})
	}
	return nil
}

// compile returns the prefix as a netip.Prefix (host bits kept) and as
// the subnet it names.
func (pf Prefix) compile() (netip.Prefix, subnet, error) {
	if pf.Bits < 0 || pf.Bits > 32 {
		return netip.Prefix{}, subnet{}, fmt.Errorf("prefix length %d is not between 0 and 32", pf.Bits)
	}
	var mask uint32
	if pf.Bits > 0 {
		mask = ^uint32(0) << (32 - pf.Bits)
	}
	return netip.PrefixFrom(AddrFrom(pf.Addr), pf.Bits), subnet{net: pf.Addr & mask, mask: mask}, nil
}

// addrsFrom converts host-order addresses to netip.Addrs.
func addrsFrom(u []uint32) []netip.Addr {
	a := make([]netip.Addr, len(u))
	for i, v := range u {
		a[i] = AddrFrom(v)
	}
	return a
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

// Instances returns the policy's instances (1:1 mappings) by private
// address, for the management core (the NAT log's block events); an
// instance set to drain is one until it leaves the configuration.
func (p *Policy) Instances() []Instance {
	out := make([]Instance, 0, len(p.instances)+len(p.drain.draining))
	for _, in := range p.instances {
		out = append(out, *in)
	}
	for _, in := range p.drain.draining { // draining: still 1:1 for its flows
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b Instance) int { return cmp.Compare(a.Private, b.Private) })
	return out
}

// DefaultSNATPortsPerMember returns the size of a default-SNAT block, or
// 0 when default SNAT is off.
func (p *Policy) DefaultSNATPortsPerMember() int { return p.defaultCfg.PortsPerMember }

// DefaultSNATReclaimIdle returns how long a default-SNAT block must have
// had no flows before the management core reclaims it, or 0 when default
// SNAT is off.
func (p *Policy) DefaultSNATReclaimIdle() time.Duration { return p.defaultIdle }

// RejectsOnExhaustion reports whether new flows of scope (a pool index)
// are refused with a RST or an ICMP error rather than dropped when their
// member has no free port (on_exhaustion = "reject").
func (p *Policy) RejectsOnExhaustion(scope uint16) bool {
	return int(scope) < len(p.Pools) && p.Pools[scope].RejectOnExhaustion
}

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
	var changed []netip.Addr
	for _, c := range p.MemberChanges(old) {
		changed = append(changed, c.Member)
	}
	return changed
}

// U32 returns an IPv4 address in the form the packet path and PolicySpec
// use: its four bytes read big-endian into a uint32, held in host byte
// order (10.0.0.1 is 0x0a000001, so a prefix is a mask of the high bits).
// It returns 0, the unspecified address, for an IPv6 or invalid address;
// callers that may be handed one check Is4 first. AddrFrom is its
// inverse.
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

// Keeps reports whether flow f, created under an older policy, would stay
// under p [S7]: its private address still maps to the address the flow
// uses, its public port lies in the member's block or grace, no deny
// rule now blocks its destination, and it holds an endpoint-independent
// mapping exactly when its scope now maps so (eim.go). It changes nothing, so the management
// core may ask it of a candidate policy that was never published (natgw
// plan); the sweep and the lazy re-validation on the packet path decide
// with the same function (Translator.revalidate), so a plan and the
// reload that follows it cannot disagree on a flow.
//
// Two later checks of revalidate can still reclaim a flow Keeps keeps,
// both for reasons a plan cannot see: a default-SNAT flow counted on
// another allocator whose address gets no block from the running one
// (when default_snat changed, Classify finds no block until new traffic
// takes one, so Keeps already says no), and an instance flow moving into
// a pool when the worker's port usage table is full.
func (p *Policy) Keeps(f *Flow) bool {
	_, keep := p.keeps(f)
	return keep
}

// keeps is Keeps, also returning the mapping the flow's private address
// has under p.
func (p *Policy) keeps(f *Flow) (Mapping, bool) {
	m, v := p.Classify(f.Priv)
	keep := v == VerdictForward && m.Block.Public == f.Pub &&
		(m.Block.Contains(f.PubPort) || (m.Grace.Public == f.Pub && m.Grace.Contains(f.PubPort)))
	if keep && f.Flags&flagInbound == 0 && p.Denied(f.Remote, f.Proto, f.RemotePort) {
		keep = false
	}
	// A flow holds an endpoint-independent mapping exactly when its
	// scope maps so: a reload that changes the mode reclaims (eim.go).
	if keep && (f.Flags&flagEIM != 0) != (eimProto(f.Proto) && p.eimScope(m.Scope)) {
		keep = false
	}
	return m, keep
}

// MemberChange is a pool member of a running policy whose block a new
// policy changes (natgw plan).
type MemberChange struct {
	// Member is the member's private address.
	Member netip.Addr
	// OldPool and NewPool name its pool in the running and the new
	// policy; NewPool is empty when it is no pool member any more.
	OldPool, NewPool string
	// Old and New are its blocks; New is the zero Block when it left.
	Old, New portalloc.Block
	// Grace is the part of Old its existing flows keep (graceFor).
	Grace portalloc.Block
}

// MemberChanges lists, sorted by address, the pool members of old whose
// block p changes, members that left included: their flows on ports
// outside the new block and its grace are reclaimed [S7]. It is
// ChangedMembers with the blocks.
func (p *Policy) MemberChanges(old *Policy) []MemberChange {
	if old == nil {
		return nil
	}
	var out []MemberChange
	for a, om := range old.members {
		nm, ok := p.members[a]
		if ok && nm.block == om.block {
			continue
		}
		c := MemberChange{Member: AddrFrom(a), OldPool: old.PoolName(om.pool), Old: om.block}
		if ok {
			c.NewPool, c.New, c.Grace = p.PoolName(nm.pool), nm.block, nm.grace
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b MemberChange) int { return a.Member.Compare(b.Member) })
	return out
}

// DefaultSources returns the default-SNAT source prefixes (none when
// default SNAT is off).
func (p *Policy) DefaultSources() []netip.Prefix {
	out := make([]netip.Prefix, len(p.defaultSrc))
	for i, s := range p.defaultSrc {
		out[i] = netip.PrefixFrom(AddrFrom(s.net), bits.OnesCount32(s.mask))
	}
	return out
}
