package nat

// Endpoint-independent mapping and the filtering of its public ports
// (RFC 4787 REQ-1, REQ-8; issue 19, docs/DESIGN.md "Mapping behaviours").
//
// A pool or default SNAT with MappingEndpointIndependent gives a member's
// (protocol, private address, private port) one public port for every
// destination while the mapping lives, that is while some flow of it
// lives. The translator keeps the mappings in an eimTable of its own: an
// entry per mapping (private and public endpoint, the number of flows
// holding it) indexed by both endpoints, and a set of (mapping, remote
// address) pairs with their flow counts, which address-dependent
// filtering asks. Everything is preallocated when the first policy with
// such a scope arrives and sized like the flow table (a mapping has at
// least one flow, a pair too), so the table is full only when the flow
// table is; the management core makes it and the worker takes it when it
// switches to the policy (prepare.go); a full table is a flow_table_full drop. Entries change when
// flows are created and released, never per packet: established flows of
// either mode take the very same hit path.

import (
	"reflect"

	"github.com/natgw/natgw/portalloc"
)

// MappingMode is how a scope maps a private endpoint to public ports
// (RFC 4787 section 4.1).
type MappingMode uint8

// Mapping modes.
const (
	// MappingAddressPortDependent takes a port per destination (remote
	// address and port): the default, the seed's behaviour [S2].
	MappingAddressPortDependent MappingMode = iota
	// MappingEndpointIndependent keeps one public port for a private
	// endpoint towards every destination while a flow of it lives.
	MappingEndpointIndependent
)

// String returns the mode's configuration name.
func (m MappingMode) String() string {
	if m == MappingEndpointIndependent {
		return "endpoint-independent"
	}
	return "address-and-port-dependent"
}

// FilteringMode says which inbound packets to an endpoint-independent
// mapping's public port open a flow to its private endpoint (RFC 4787
// section 5). Address-and-port-dependent mappings always filter by
// address and port: only packets of an existing flow pass.
type FilteringMode uint8

// Filtering modes.
const (
	// FilteringAddressPortDependent passes only packets from a remote
	// endpoint the mapping has a flow with (the default).
	FilteringAddressPortDependent FilteringMode = iota
	// FilteringAddressDependent also opens a flow for packets from any
	// port of a remote address the mapping has a flow with.
	FilteringAddressDependent
	// FilteringEndpointIndependent opens a flow for packets from any
	// remote endpoint.
	FilteringEndpointIndependent
)

// String returns the mode's configuration name.
func (f FilteringMode) String() string {
	switch f {
	case FilteringAddressDependent:
		return "address-dependent"
	case FilteringEndpointIndependent:
		return "endpoint-independent"
	}
	return "address-and-port-dependent"
}

// flagEIM marks a flow that holds an endpoint-independent mapping: its
// creation counted it in the translator's eimTable and its release
// uncounts it. A reload that changes its scope's mapping mode reclaims it
// (Policy.keeps).
const flagEIM uint8 = 1 << 7

// Behaviour returns the mapping and filtering modes of a scope (a pool
// index or ScopeDefault); instances and unknown scopes are
// address-and-port dependent.
func (p *Policy) Behaviour(scope uint16) (MappingMode, FilteringMode) {
	switch {
	case scope == ScopeDefault:
		return p.defaultMapping, p.defaultFiltering
	case int(scope) < len(p.Pools):
		return p.Pools[scope].Mapping, p.Pools[scope].Filtering
	}
	return MappingAddressPortDependent, FilteringAddressPortDependent
}

// addEIMPublics records public addresses of an endpoint-independent
// scope.
func (p *Policy) addEIMPublics(pubs []uint32) {
	p.eim = true
	if p.eimPubs == nil {
		p.eimPubs = make(map[uint32]bool)
	}
	for _, a := range pubs {
		p.eimPubs[a] = true
	}
}

// EIMOwner returns the worker, of workers, that owns the
// endpoint-independent mapping of a private endpoint, and with it every
// flow of that endpoint (docs/DESIGN.md, "Mapping behaviours").
func EIMOwner(proto uint8, priv uint32, port uint16, workers int) int {
	if workers <= 1 {
		return 0
	}
	h := (uint64(priv)<<32 | uint64(port)<<8 | uint64(proto)) * hashMul0
	h ^= h >> 31
	h *= hashMul2
	return int((h >> 32) * uint64(workers) >> 32)
}

// PortOwner returns the worker, of workers, that maps public port port
// endpoint independently: a worker gives its mappings only ports it owns,
// so an inbound packet that matched no flow finds the mapping through its
// destination port.
func PortOwner(port uint16, workers int) int {
	if workers <= 1 {
		return 0
	}
	return int(port) % workers
}

// HandoffOwner returns the worker a packet the translator gave
// VerdictHandoff goes to: l3 is the untouched packet from the IPv4
// header, dir DirOut for packets from the inside; a later fragment
// (fragPorts) carries its datagram's ports sport and dport. It is the
// worker the translator found, computed again from the packet.
func HandoffOwner(l3 []byte, dir int, fragPorts bool, sport, dport uint16, workers int) int {
	ip, ok := ParseIPv4Embedded(l3)
	if !ok {
		return 0
	}
	proto := ip.Protocol()
	if !fragPorts {
		var kind TransportKind
		kind, sport, dport = ReadTransport(proto, ip.Payload())
		if kind == TransportICMPError {
			emb, ok := ParseIPv4Embedded(ICMP(ip.Payload()).Payload())
			if !ok {
				return 0
			}
			_, es, ed := ReadTransport(emb.Protocol(), emb.Payload())
			if dir == DirIn { // the quote went out: its source is ours
				return PortOwner(es, workers)
			}
			return EIMOwner(emb.Protocol(), emb.Dst(), ed, workers)
		}
	}
	if dir == DirIn {
		return PortOwner(dport, workers)
	}
	return EIMOwner(proto, ip.Src(), sport, workers)
}

// handoffOut reports whether a packet from private endpoint
// (proto, priv, port) that matched no flow here belongs to another
// worker's endpoint-independent mapping.
func (t *Translator) handoffOut(proto uint8, priv uint32, port uint16) bool {
	if t.workers <= 1 || !t.pol.eim || !eimProto(proto) {
		return false
	}
	m, v := t.pol.Classify(priv)
	return v == VerdictForward && m.Scenario != ScenarioInstance && t.pol.eimScope(m.Scope) &&
		EIMOwner(proto, priv, port, t.workers) != t.worker
}

// handoffIn reports whether a packet from the outside to public endpoint
// (proto, pub, port) that matched no flow here may belong to another
// worker's endpoint-independent mapping.
func (t *Translator) handoffIn(proto uint8, pub uint32, port uint16) bool {
	return t.workers > 1 && t.pol.eim && eimProto(proto) && t.pol.eimPubs[pub] &&
		PortOwner(port, t.workers) != t.worker
}

// HasEIM reports whether some scope of the policy maps endpoint
// independently.
func (p *Policy) HasEIM() bool { return p.eim }

// eimScope reports whether flows of scope map endpoint independently.
func (p *Policy) eimScope(scope uint16) bool {
	m, _ := p.Behaviour(scope)
	return m == MappingEndpointIndependent
}

// eimProto reports whether flows of proto can hold an endpoint-independent
// mapping: TCP and UDP. ICMP echo keeps an identifier per destination.
func eimProto(proto uint8) bool { return proto == ProtoTCP || proto == ProtoUDP }

// eimEntry is one mapping.
type eimEntry struct {
	priv, pub         uint32
	privPort, pubPort uint16
	proto             uint8
	// flows is the number of flows holding the mapping (0: free record;
	// next then links free records).
	flows, next uint32
}

// remoteSlot is one slot of the (mapping, remote address) set: key is
// entry<<32 | remote address (0: empty, entries start at 1).
type remoteSlot struct {
	key   uint64
	flows uint32
}

// eimTable holds a translator's endpoint-independent mappings.
type eimTable struct {
	ents   []eimEntry // index 0 unused
	free   uint32
	used   uint32
	n      int
	byPriv flowIndex // tag of (priv, 0, privPort, 0, proto)
	byPub  flowIndex // tag of (pub, 0, pubPort, 0, proto)
	rem    []remoteSlot
	remN   int
}

// newEIMTable returns an empty table for capacity mappings and as many
// (mapping, remote address) pairs.
func newEIMTable(capacity int, seeds [4]uint64) *eimTable {
	capacity = max(1, capacity)
	return &eimTable{
		ents:   make([]eimEntry, capacity+1),
		byPriv: newFlowIndex(capacity, seeds[0], seeds[1]),
		byPub:  newFlowIndex(capacity, seeds[2], seeds[3]),
		rem:    make([]remoteSlot, max(16, 2*capacity)),
	}
}

// memoryBytes returns the bytes the table holds.
func (e *eimTable) memoryBytes() int {
	if e == nil {
		return 0
	}
	return len(e.ents)*int(reflect.TypeFor[eimEntry]().Size()) +
		(len(e.byPriv.slots)+len(e.byPub.slots))*int(reflect.TypeFor[indexSlot]().Size()) +
		len(e.rem)*int(reflect.TypeFor[remoteSlot]().Size())
}

// byPrivate returns the mapping of a private endpoint, or 0.
func (e *eimTable) byPrivate(proto uint8, priv uint32, port uint16) uint32 {
	x := &e.byPriv
	tag := x.tag(priv, 0, port, 0, proto)
	for p := x.home(tag); ; p = x.next(p) {
		s := x.slots[p]
		if s.tag == 0 {
			return 0
		}
		if s.tag == tag && s.flow < uint32(len(e.ents)) {
			if m := &e.ents[s.flow]; m.priv == priv && m.privPort == port && m.proto == proto && m.flows > 0 {
				return s.flow
			}
		}
	}
}

// byPublic returns the mapping that holds a public endpoint, or 0.
func (e *eimTable) byPublic(proto uint8, pub uint32, port uint16) uint32 {
	x := &e.byPub
	tag := x.tag(pub, 0, port, 0, proto)
	for p := x.home(tag); ; p = x.next(p) {
		s := x.slots[p]
		if s.tag == 0 {
			return 0
		}
		if s.tag == tag && s.flow < uint32(len(e.ents)) {
			if m := &e.ents[s.flow]; m.pub == pub && m.pubPort == port && m.proto == proto && m.flows > 0 {
				return s.flow
			}
		}
	}
}

// emptySlot returns the first empty slot of tag's probe run in x.
func emptySlot(x *flowIndex, tag uint32) uint32 {
	p := x.home(tag)
	for x.slots[p].tag != 0 {
		p = x.next(p)
	}
	return p
}

// add creates a mapping with no flow yet; the caller checked that neither
// endpoint is mapped. It returns 0 when the table is full.
func (e *eimTable) add(proto uint8, priv uint32, privPort uint16, pub uint32, pubPort uint16) uint32 {
	if e.n >= len(e.ents)-1 {
		return 0
	}
	i := e.free
	if i != 0 {
		e.free = e.ents[i].next
	} else {
		e.used++
		i = e.used
	}
	e.ents[i] = eimEntry{priv: priv, pub: pub, privPort: privPort, pubPort: pubPort, proto: proto}
	t := e.byPriv.tag(priv, 0, privPort, 0, proto)
	e.byPriv.slots[emptySlot(&e.byPriv, t)] = indexSlot{tag: t, flow: i}
	t = e.byPub.tag(pub, 0, pubPort, 0, proto)
	e.byPub.slots[emptySlot(&e.byPub, t)] = indexSlot{tag: t, flow: i}
	e.n++
	return i
}

// drop removes mapping i, which holds no flow any more.
func (e *eimTable) drop(i uint32) {
	m := &e.ents[i]
	e.byPriv.remove(e.byPriv.tag(m.priv, 0, m.privPort, 0, m.proto), i)
	e.byPub.remove(e.byPub.tag(m.pub, 0, m.pubPort, 0, m.proto), i)
	*m = eimEntry{next: e.free}
	e.free = i
	e.n--
}

// remHome returns the home slot of a (mapping, remote) key.
func (e *eimTable) remHome(key uint64) uint32 {
	h := key * hashMul0
	h ^= h >> 29
	h *= hashMul2
	return uint32((h >> 32) * uint64(len(e.rem)) >> 32)
}

func (e *eimTable) remNext(p uint32) uint32 {
	if p++; p == uint32(len(e.rem)) {
		return 0
	}
	return p
}

// hasRemote reports whether mapping i has a flow with remote address a.
func (e *eimTable) hasRemote(i, a uint32) bool {
	key := uint64(i)<<32 | uint64(a)
	for p := e.remHome(key); ; p = e.remNext(p) {
		switch e.rem[p].key {
		case key:
			return true
		case 0:
			return false
		}
	}
}

// addRemote counts a flow of mapping i with remote address a. It reports
// false when the set is full.
func (e *eimTable) addRemote(i, a uint32) bool {
	key := uint64(i)<<32 | uint64(a)
	p := e.remHome(key)
	for ; e.rem[p].key != 0; p = e.remNext(p) {
		if e.rem[p].key == key {
			e.rem[p].flows++
			return true
		}
	}
	if 2*(e.remN+1) > len(e.rem) {
		return false
	}
	e.rem[p] = remoteSlot{key: key, flows: 1}
	e.remN++
	return true
}

// subRemote uncounts a flow of mapping i with remote address a, removing
// the pair with its last flow (backward-shift deletion).
func (e *eimTable) subRemote(i, a uint32) {
	key := uint64(i)<<32 | uint64(a)
	p := e.remHome(key)
	for e.rem[p].key != key {
		if e.rem[p].key == 0 {
			return
		}
		p = e.remNext(p)
	}
	if e.rem[p].flows--; e.rem[p].flows > 0 {
		return
	}
	size := uint32(len(e.rem))
	dist := func(from, j uint32) uint32 {
		if j >= from {
			return j - from
		}
		return j + size - from
	}
	hole := p
	for j := e.remNext(p); e.rem[j].key != 0; j = e.remNext(j) {
		if dist(e.remHome(e.rem[j].key), j) >= dist(hole, j) {
			e.rem[hole] = e.rem[j]
			hole = j
		}
	}
	e.rem[hole] = remoteSlot{}
	e.remN--
}

// Mappings returns the number of endpoint-independent mappings the
// translator holds.
func (t *Translator) Mappings() int {
	if t.eim == nil {
		return 0
	}
	return t.eim.n
}

// MappingOf returns the public endpoint of the endpoint-independent
// mapping of a private endpoint, and whether there is one (tests, API).
func (t *Translator) MappingOf(proto uint8, priv uint32, port uint16) (pub uint32, pubPort uint16, ok bool) {
	if t.eim == nil {
		return 0, 0, false
	}
	i := t.eim.byPrivate(proto, priv, port)
	if i == 0 {
		return 0, 0, false
	}
	m := &t.eim.ents[i]
	return m.pub, m.pubPort, true
}

// eimPort chooses the public port of a new outbound flow of an
// endpoint-independent scope: its private endpoint's mapping's port, or,
// for a new mapping, a block port no mapping holds and no flow uses
// towards the destination. It returns the mapping (0 for a new one, which
// eimHold creates) and a verdict.
func (t *Translator) eimPort(pi *pktInfo, m *Mapping, src, dst uint32) (uint16, uint32, Verdict) {
	e := t.eim
	pub := m.Block.Public
	if i := e.byPrivate(pi.proto, src, pi.sport); i != 0 {
		me := &e.ents[i]
		valid := me.pub == pub && (m.Block.Contains(me.pubPort) ||
			(m.Grace.Public == pub && m.Grace.Contains(me.pubPort)))
		// A mapping left by a reload that moved the member's block ends
		// with its flows, which the sweep reclaims: until then the member
		// can't map this endpoint again. A port a stale flow still holds
		// towards this destination is no more free.
		if !valid || t.portUsed(pub, me.pubPort, dst, pi.dport, pi.proto) {
			return 0, 0, DropPortExhausted
		}
		return me.pubPort, i, VerdictForward
	}
	used := func(port uint16) bool {
		return PortOwner(port, t.workers) != t.worker || e.byPublic(pi.proto, pub, port) != 0 ||
			t.portUsed(pub, port, dst, pi.dport, pi.proto)
	}
	var port uint16
	var ok bool
	if pi.hinted {
		port, ok = portalloc.PickFrom(m.Block, pi.hint, &t.rand, used)
	} else {
		port, ok = portalloc.Pick(m.Block, &t.rand, used)
	}
	if !ok {
		return 0, 0, DropPortExhausted
	}
	return port, 0, VerdictForward
}

// eimReserve makes sure flow f (not inserted yet) can be counted on its
// mapping: it creates the mapping when i is 0 and counts the pair of
// (mapping, f.Remote). It returns the mapping, or 0 when a table is full.
func (t *Translator) eimReserve(f *Flow, i uint32) uint32 {
	e := t.eim
	created := false
	if i == 0 {
		if i = e.add(f.Proto, f.Priv, f.PrivPort, f.Pub, f.PubPort); i == 0 {
			return 0
		}
		created = true
	}
	if !e.addRemote(i, f.Remote) {
		if created {
			e.drop(i)
		}
		return 0
	}
	e.ents[i].flows++
	return i
}

// eimRelease uncounts a flow of mapping i (after eimReserve), dropping
// the mapping with its last flow.
func (t *Translator) eimRelease(i uint32, remote uint32) {
	e := t.eim
	e.subRemote(i, remote)
	if e.ents[i].flows--; e.ents[i].flows == 0 {
		e.drop(i)
	}
}

// eimReleaseFlow uncounts an ending flow that holds a mapping.
func (t *Translator) eimReleaseFlow(f *Flow) {
	if t.eim == nil {
		return
	}
	if i := t.eim.byPrivate(f.Proto, f.Priv, f.PrivPort); i != 0 {
		t.eimRelease(i, f.Remote)
	}
}

// eimInbound opens a flow for an inbound TCP or UDP packet that matched
// no flow, when its destination is the public endpoint of an
// endpoint-independent mapping whose filtering admits the packet's source.
// ok is false when no mapping holds the endpoint (the caller goes on).
func (t *Translator) eimInbound(pi *pktInfo, now Tick) (idx uint32, v Verdict, ok bool) {
	if t.eim == nil || pi.kind != kindPorts {
		return 0, 0, false
	}
	pub, remote := pi.ip.Dst(), pi.ip.Src()
	if t.handoffIn(pi.proto, pub, pi.dport) {
		return 0, VerdictHandoff, true
	}
	if t.eim.n == 0 {
		return 0, 0, false
	}
	i := t.eim.byPublic(pi.proto, pub, pi.dport)
	if i == 0 {
		return 0, 0, false
	}
	me := t.eim.ents[i]
	p := t.pol
	m, mv := p.Classify(me.priv)
	if mv != VerdictForward || m.Scenario == ScenarioInstance {
		return 0, DropNoFlow, true
	}
	mode, filt := p.Behaviour(m.Scope)
	switch {
	case mode != MappingEndpointIndependent:
		return 0, DropNoFlow, true
	case filt == FilteringAddressDependent && !t.eim.hasRemote(i, remote):
		return 0, DropNoFlow, true
	case filt == FilteringAddressPortDependent:
		return 0, DropNoFlow, true
	}
	if pi.proto == ProtoTCP && pi.tcpFlags&(TCPFlagSYN|TCPFlagACK|TCPFlagRST) != TCPFlagSYN {
		return 0, DropNoFlow, true // only a SYN opens an inbound TCP flow
	}
	if p.Martian(remote) {
		return 0, DropMartian, true
	}
	f := Flow{Priv: me.priv, Pub: pub, Remote: remote, PrivPort: me.privPort, PubPort: pi.dport,
		RemotePort: pi.sport, Proto: pi.proto, State: initialState(pi.proto), Flags: flagInbound | flagEIM,
		Gen: p.Gen, Scope: m.Scope}
	if p.IsPublic(remote) {
		f.Flags |= flagHairpin // opened by a hairpinned packet: so are its replies
	}
	if m.Block.Public != pub || !(m.Block.Contains(pi.dport) || (m.Grace.Public == pub && m.Grace.Contains(pi.dport))) {
		return 0, DropNoFlow, true // the mapping's port is no more the member's
	}
	if m.Scenario == ScenarioDefault {
		// Classify looked the block up without assigning one: a packet
		// from the outside never makes the assigner give a block. Acquire
		// pins the block the source holds for the new flow.
		b, ok := p.defaultSNAT.Acquire(t.worker, me.priv)
		if !ok || b != m.Block {
			if ok {
				p.defaultSNAT.Release(t.worker, me.priv)
			}
			return 0, DropNoFlow, true
		}
		f.snat = t.snatCur
	}
	idx, v = t.insertFlow(&f, &m, i, true, now)
	if v != VerdictForward && f.snat != 0 {
		p.defaultSNAT.Release(t.worker, me.priv)
	}
	return idx, v, true
}
