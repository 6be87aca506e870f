package nat

import (
	"strconv"

	"github.com/natgw/natgw/portalloc"
)

// This file is the translation pipeline of one worker: classify, look up
// or create the flow, rewrite addresses, ports and checksums, update TCP
// state. A Translator is owned by exactly one worker goroutine; nothing
// here locks or allocates per packet.

// Direction indexes per-direction counters.
const (
	DirOut = 0 // private to public
	DirIn  = 1 // public to private
)

// Packet kinds found by parsing.
const (
	kindPorts     uint8 = iota // TCP or UDP
	kindEcho                   // ICMP echo request or reply, id as port
	kindICMPError              // ICMP error quoting a packet of a flow
	kindDone                   // verdict already decided by parsing
)

// flagInbound marks a flow opened from the outside (instance inbound rules).
const flagInbound uint8 = 1 << 5

// flagHairpin marks an outbound flow whose remote is one of natgw's public
// addresses (Policy.IsPublic): its packets are hairpinned, translated
// inbound after the outbound translation (VerdictHairpin). It is decided
// when the flow is created and again when a reload revalidates it, so
// packets of established flows pay one test of a flag already loaded.
const flagHairpin uint8 = 1 << 6

// pktInfo is what parsing learned of one packet.
type pktInfo struct {
	ip       IPv4
	l4       []byte
	kind     uint8
	proto    uint8
	tcpFlags uint8
	icmpType uint8
	ack      uint32 // TCP acknowledgement number
	sport    uint16 // source port, or echo id
	dport    uint16 // destination port, or 0 for echo
	verdict  Verdict
	// hint is the public port a new outbound flow tries first (drawn in
	// prepareNew, whose prefetches made checking it cheap); hinted says
	// it is set.
	hint   uint16
	hinted bool
	// pos is the packet's index in its burst chunk.
	pos uint8
}

// outKey is the private 5-tuple of a packet from the inside.
func (pi *pktInfo) outKey() OutKey {
	return OutKey{Priv: pi.ip.Src(), Remote: pi.ip.Dst(), PrivPort: pi.sport, RemotePort: pi.dport, Proto: pi.proto}
}

// inKey is the public 5-tuple of a packet from the outside.
func (pi *pktInfo) inKey() InKey {
	return InKey{Pub: pi.ip.Dst(), Remote: pi.ip.Src(), PubPort: pi.dport, RemotePort: pi.sport, Proto: pi.proto}
}

// Stats are a translator's counters. They are written only by the owning
// worker; the runtime publishes snapshots of them for the management core.
type Stats struct {
	Verdicts     [NumVerdicts]uint64
	Packets      [2]uint64 // by direction, translated packets
	Bytes        [2]uint64
	FlowsCreated [3]uint64 // by ProtoIndex
	FlowsExpired [NumExpireReasons]uint64
	FlowsActive  [3]uint64 // by ProtoIndex
	// ResetsDropped counts idle TCP flows that tcp_reset_on_idle could not
	// reset because more expired at once than the reset buffer holds.
	ResetsDropped uint64
	// FlowsDraining is the number of draining flows, and Drained counts
	// the draining flows that ended, by DrainOutcome (drain.go).
	FlowsDraining uint64
	Drained       [NumDrainOutcomes]uint64
	// Exhausted counts port_exhausted drops by scope: index i < len(pools)
	// is pool i, the last entry is default SNAT. It is rebuilt, carrying
	// the counts over by pool name, on each SetPolicy.
	Exhausted []uint64
}

// ExhaustEvent describes a new flow refused for lack of a port [S4]; the
// management core logs it, rate-limited.
type ExhaustEvent struct {
	Private, Remote uint32
	RemotePort      uint16
	Proto           uint8
	Scope           uint16
}

// TranslatorOptions configure a Translator.
type TranslatorOptions struct {
	// Worker is the index of the owning worker (for default-SNAT flow
	// accounting).
	Worker int
	// FlowCapacity is the size of the flow table.
	FlowCapacity int
	// Seed seeds the port choice.
	Seed uint64
	// OnExhausted, when set, is called (on the worker) for each new flow
	// refused for lack of a port. It must not block.
	OnExhausted func(ExhaustEvent)
	// Workers is the number of workers; endpoint-independent mappings
	// are owned by one of them (eim.go). 0 means 1.
	Workers int
	// MappingCapacity bounds the endpoint-independent mappings (and the
	// mapping-remote address pairs of their flows); 0 means the flow
	// capacity, which the mappings can never outgrow (eim.go).
	MappingCapacity int
	// SourceCheck, when set, is asked about every new outbound flow the
	// policy would admit, before it takes a port or a default-SNAT block:
	// i is the packet's index in the slice given to OutboundBurst (0 for
	// Outbound), src its source, newBlock whether the flow would assign a
	// default-SNAT block to src. Any verdict but VerdictForward refuses
	// the flow with that verdict. Packets of existing flows never reach
	// it. It runs on the worker and must not block or allocate.
	SourceCheck func(i int, src uint32, newBlock bool) Verdict
	// Redirect, when set, is asked, while SetRedirect(true) is in force,
	// about every packet from the inside that matched no flow and would
	// open one (after the policy's checks and SourceCheck, before a port
	// or a default-SNAT block is taken): i is as for SourceCheck, k the
	// packet's private 5-tuple. True leaves the packet untranslated with
	// VerdictRedirect (the runtime sends it to a cluster peer); false
	// opens the flow here as usual. It runs on the worker and must not
	// block or allocate.
	Redirect func(i int, k *OutKey) bool
}

// Translator translates the packets of one worker.
type Translator struct {
	flows   *FlowTable
	usage   *portalloc.Usage
	hot     portalloc.Hot // pairs closest to exhaustion, on create/release only
	rand    portalloc.Rand
	pol     *Policy
	worker  int
	workers int
	onExh   func(ExhaustEvent)
	onSess  SessionHook // session.go
	srcChk  func(i int, src uint32, newBlock bool) Verdict
	// redirect says new outbound flows are offered to redirChk
	// (SetRedirect); it is tested only when a packet opens a flow.
	redirect bool
	redirChk func(i int, k *OutKey) bool
	redirKey OutKey // the key redirChk is shown (a field: no escape)
	// base is the index of the current burst chunk's first packet in the
	// caller's slice (for SourceCheck).
	base   int
	sweep  uint32     // cursor of the reclaim sweep
	drain  drainState // draining flows (drain.go)
	resets []Flow     // idle established TCP flows to reset (tcp_reset_on_idle)
	// snats are the default-SNAT allocators this worker's flows are
	// counted on, indexed by Flow.snat (entry 0 unused); snatCur is the
	// running policy's (0 when it has none). See SetPolicy.
	snats   [maxSNATs]snatRef
	snatCur uint8
	// hosts counts the flows each host opened, inbound the flows opened
	// from the outside, limits are the policy's bounds on both
	// (hostlimit.go).
	hosts   hostCounts
	inbound int
	limits  hostLimits
	// eim holds the endpoint-independent mappings, made for the first
	// policy that has such a scope (eim.go, prepare.go); eimCap is its
	// capacity (0: the flow capacity, flowCap).
	eim     *eimTable
	eimCap  int
	flowCap int
	// slot is the translator's index in the ready lists of the policies
	// of the holder it is attached to, -1 before Attach; eimGiven is the
	// mapping table the management core made for it (prepare.go).
	slot     int
	eimGiven *eimTable
	// exhPub is where Stats.Exhausted is published under the running
	// policy (exhausted.go).
	exhPub *ExhaustedCounts
	// Stats are the worker's counters (see Stats).
	Stats Stats

	batchInfo [MaxBurst]pktInfo
	outKeys   [MaxBurst]OutKey
	inKeys    [MaxBurst]InKey
	keyPkt    [MaxBurst]uint8
	idx       [MaxBurst]uint32
}

// snatRef is a default-SNAT allocator and the number of this worker's
// flows counted on it.
type snatRef struct {
	d     *portalloc.DefaultSNAT
	flows int
}

// maxSNATs bounds the default-SNAT allocators a worker's flows can be
// counted on at once (Flow.snat is a byte).
const maxSNATs = 256

// MaxBurst is the largest burst the burst functions take.
const MaxBurst = 64

// maxResets bounds the flows one Expire call can hand over for resetting.
const maxResets = 256

// NewTranslator returns a translator with an empty flow table of the
// given capacity, running policy p.
func NewTranslator(p *Policy, opts TranslatorOptions, now Tick) *Translator {
	t := &Translator{
		flows:    NewFlowTable(opts.FlowCapacity, p.Timeouts, now),
		usage:    portalloc.NewUsage(opts.FlowCapacity),
		rand:     portalloc.NewRand(opts.Seed),
		worker:   opts.Worker,
		workers:  max(1, opts.Workers),
		onExh:    opts.OnExhausted,
		srcChk:   opts.SourceCheck,
		redirChk: opts.Redirect,
		resets:   make([]Flow, 0, maxResets),
		eimCap:   opts.MappingCapacity,
		slot:     -1,
	}
	t.flowCap = t.flows.Capacity()
	t.hosts = newHostCounts(t.flowCap)
	t.SetPolicy(p)
	t.eimGiven = t.eim
	return t
}

// Flows returns the translator's flow table.
func (t *Translator) Flows() *FlowTable { return t.flows }

// Usage returns the per-destination port usage counts.
func (t *Translator) Usage() *portalloc.Usage { return t.usage }

// Hot returns the (member, destination) pairs closest to exhaustion,
// updated on flow creation and release only (portalloc.Hot).
func (t *Translator) Hot() *portalloc.Hot { return &t.hot }

// MemoryBytes returns the memory the translator holds for flows: the flow
// table, the per-destination usage counts and the per-host flow counts.
func (t *Translator) MemoryBytes() int {
	return t.flows.MemoryBytes() + t.usage.MemoryBytes() + t.hosts.memoryBytes() + t.eim.memoryBytes()
}

// SetRedirect turns the redirection of new outbound flows on or off
// (TranslatorOptions.Redirect; without it, a no-op). Packets of existing
// flows are translated either way. Call it between bursts.
func (t *Translator) SetRedirect(on bool) { t.redirect = on && t.redirChk != nil }

// Redirecting reports whether new outbound flows are offered to the
// Redirect hook.
func (t *Translator) Redirecting() bool { return t.redirect }

// Policy returns the policy the translator runs.
func (t *Translator) Policy() *Policy { return t.pol }

// SetPolicy switches to a new policy; call it between bursts. Flows of older
// generations are re-validated lazily when met, and by Sweep [S7]: a new
// policy restarts the sweep from the first record, so flows an unfinished
// sweep already passed are checked against the newest policy too. Flows
// the policy drains count their deadline from the last time given to
// Expire or ExpireDrained; SetPolicyAt gives the time itself.
func (t *Translator) SetPolicy(p *Policy) { t.SetPolicyAt(p, t.drain.clock) }

// SetPolicyAt is SetPolicy at time now: the drain deadline of the flows
// the policy drains counts from now. It allocates nothing when p was
// published by the PolicyHolder t is attached to, which prepared the
// switch (prepare.go); otherwise it makes what p needs itself.
func (t *Translator) SetPolicyAt(p *Policy, now Tick) {
	if t.pol == p {
		return
	}
	r := p.readyFor(t)
	if r == nil {
		// Nobody prepared the switch: a policy not published by a
		// holder t is attached to. It allocates, here.
		local := t.prepare(p, t.eim)
		r = &local
	}
	t.drain.polAt = now
	old := t.pol
	t.pol = p
	t.sweep = 0
	t.flows.SetTimeouts(p.Timeouts)
	t.limits = limitsFor(p, t.flowCap)
	exh := r.exhausted
	clear(exh) // a policy switched back to holds its old counts
	if old != nil {
		for i, pi := range old.Pools {
			for j := range p.Pools {
				if p.Pools[j].Name == pi.Name {
					exh[j] += t.Stats.Exhausted[i]
				}
			}
		}
		exh[len(p.Pools)] = t.Stats.Exhausted[len(old.Pools)]
	}
	t.Stats.Exhausted = exh
	t.exhPub = r.published
	t.useSNAT(p.defaultSNAT)
	if t.eim == nil && p.eim {
		t.eim = r.eim
	}
}

// useSNAT makes d the allocator new default-SNAT flows are counted on.
//
// Every default-SNAT flow is counted on exactly one allocator, the one
// it releases on: the allocator of the policy it was created or last
// revalidated under. A reload that changes default_snat builds a new
// allocator; flows still counted on an older one release there
// (Flow.snat says which), and revalidation moves the count of a flow it
// keeps in default scope to the running allocator (and takes it off when
// a flow moves to another scope). So the running allocator never frees
// a block a live flow uses, and never sees a release it did not count.
//
// An allocator leaves the table when its last flow is released. A
// complete sweep moves every flow to the running allocator, so the table
// holds at most one more allocator than reloads that changed
// default_snat during one sweep; if that ever fills the table, useSNAT
// revalidates every flow at once (a pause of one sweep) to empty it.
func (t *Translator) useSNAT(d *portalloc.DefaultSNAT) {
	if c := t.snatCur; c != 0 && t.snats[c].flows <= 0 {
		t.snats[c] = snatRef{} // nothing to release there any more
	}
	t.snatCur = 0
	if d == nil {
		return
	}
	free := 0
	for i := 1; i < maxSNATs; i++ {
		if t.snats[i].d == d {
			t.snatCur = uint8(i)
			return
		}
		if free == 0 && t.snats[i].d == nil {
			free = i
		}
	}
	// free is never 0: taking the last free entry (below) empties the
	// others before returning.
	t.snats[free] = snatRef{d: d}
	t.snatCur = uint8(free)
	for i := 1; i < maxSNATs; i++ {
		if t.snats[i].d == nil {
			return
		}
	}
	// The last free entry is taken: bring every flow to the running
	// policy now, which leaves flows counted on the running allocator only.
	for !t.Sweep(t.flows.Capacity() + 1) {
	}
	t.sweep = 0
}

// countSNAT counts a flow now in default scope on the running allocator.
func (t *Translator) countSNAT(f *Flow) {
	f.snat = t.snatCur
	t.snats[t.snatCur].flows++
}

// releaseSNAT takes a default-SNAT flow off the allocator it is counted on.
func (t *Translator) releaseSNAT(f *Flow) {
	i := f.snat
	if i == 0 {
		return
	}
	r := &t.snats[i]
	r.d.Release(t.worker, f.Priv)
	f.snat = 0
	if r.flows--; r.flows <= 0 && i != t.snatCur {
		*r = snatRef{}
	}
}

// Outbound translates one packet from the inside in place. pkt starts at
// the IPv4 header (trailing link padding is allowed).
func (t *Translator) Outbound(pkt []byte, now Tick) Verdict {
	pi := &t.batchInfo[0]
	t.parse(pkt, pi, DirOut)
	t.base = 0
	var idx uint32
	if pi.kind == kindPorts || pi.kind == kindEcho {
		t.outKeys[0] = pi.outKey()
		if idx = t.flows.LookupOut(&t.outKeys[0]); idx == 0 {
			t.prepareNew(pi) // the port probe's and usage count's misses overlap
		}
	}
	return t.count(t.finishOut(pi, idx, now), pi, DirOut)
}

// Inbound translates one packet from the outside in place. pkt starts at
// the IPv4 header.
func (t *Translator) Inbound(pkt []byte, now Tick) Verdict {
	pi := &t.batchInfo[0]
	t.parse(pkt, pi, DirIn)
	var idx uint32
	if pi.kind == kindPorts || pi.kind == kindEcho {
		t.inKeys[0] = pi.inKey()
		idx = t.flows.LookupIn(&t.inKeys[0])
	}
	return t.count(t.finishIn(pi, idx, now), pi, DirIn)
}

// OutboundBurst translates up to MaxBurst packets from the inside, writing
// each packet's verdict to verdicts (len(verdicts) >= len(pkts)). The flow
// lookups of the burst are batched so their cache misses overlap.
func (t *Translator) OutboundBurst(pkts [][]byte, verdicts []Verdict, now Tick) {
	t.burst(pkts, verdicts, now, DirOut)
}

// InboundBurst is OutboundBurst for packets from the outside.
func (t *Translator) InboundBurst(pkts [][]byte, verdicts []Verdict, now Tick) {
	t.burst(pkts, verdicts, now, DirIn)
}

func (t *Translator) burst(pkts [][]byte, verdicts []Verdict, now Tick, dir int) {
	for t.base = 0; len(pkts) > 0; t.base += MaxBurst {
		n := min(len(pkts), MaxBurst)
		t.burstChunk(pkts[:n], verdicts[:n], now, dir)
		pkts, verdicts = pkts[n:], verdicts[n:]
	}
}

func (t *Translator) burstChunk(pkts [][]byte, verdicts []Verdict, now Tick, dir int) {
	nk := 0
	for i, pkt := range pkts {
		pi := &t.batchInfo[i]
		t.parse(pkt, pi, dir)
		pi.pos = uint8(i)
		if pi.kind != kindPorts && pi.kind != kindEcho {
			continue
		}
		if dir == DirOut {
			t.outKeys[nk] = pi.outKey()
		} else {
			t.inKeys[nk] = pi.inKey()
		}
		t.keyPkt[nk] = uint8(i)
		nk++
	}
	if dir == DirOut {
		t.flows.LookupOutBatch(t.outKeys[:nk], t.idx[:nk])
		for j := range nk {
			if t.idx[j] == 0 {
				t.prepareNew(&t.batchInfo[t.keyPkt[j]])
			}
		}
	} else {
		t.flows.LookupInBatch(t.inKeys[:nk], t.idx[:nk])
	}
	k := 0
	removals := t.flows.removals
	for i := range pkts {
		pi := &t.batchInfo[i]
		var idx uint32
		if k < nk && int(t.keyPkt[k]) == i {
			idx = t.idx[k]
			k++
			// An earlier packet of this burst may have created a flow
			// this one needs (look again when the batch missed), or
			// removed one (a reload's revalidation): then every record
			// number the batch found may be free or another flow's, so
			// the rest of the burst looks up again.
			if (idx == 0 && i > 0) || t.flows.removals != removals {
				idx = t.lookupAgain(pi, dir)
			}
		}
		if dir == DirOut {
			verdicts[i] = t.count(t.finishOut(pi, idx, now), pi, dir)
		} else {
			verdicts[i] = t.count(t.finishIn(pi, idx, now), pi, dir)
		}
	}
}

// prepareNew readies a packet of the burst that matched no flow and will
// likely open one: it draws the public port the new flow will try first
// and prefetches the two lines choosing it will read (the in-index slot
// that says whether the port is free towards the destination, and the
// destination's usage count), so that these cache misses of all the
// burst's new flows overlap instead of coming one after another. Nothing
// is decided here: createOut classifies and checks again.
func (t *Translator) prepareNew(pi *pktInfo) {
	pi.hinted = false
	src := pi.ip.Src()
	m, v := t.pol.Classify(src)
	if v != VerdictForward || m.Scenario == ScenarioInstance {
		return
	}
	if m.Scenario == ScenarioDefault {
		b, ok := t.pol.defaultSNAT.Lookup(src)
		if !ok {
			return
		}
		m.Block = b
	}
	n := m.Block.Size()
	if n <= 0 {
		return
	}
	pi.hint, pi.hinted = m.Block.First+uint16(t.rand.Intn(n)), true
	dst := pi.ip.Dst()
	in := &t.flows.in
	addrs := [2]uintptr{
		t.usage.HomeAddr(portalloc.Key{Private: src, Remote: dst, RemotePort: pi.dport, Proto: pi.proto}),
		in.homeAddr(in.tag(m.Block.Public, dst, pi.hint, pi.dport, pi.proto)),
	}
	prefetchAddrs(&addrs[0], len(addrs))
}

func (t *Translator) lookupAgain(pi *pktInfo, dir int) uint32 {
	if dir == DirOut {
		k := pi.outKey()
		return t.flows.LookupOut(&k)
	}
	k := pi.inKey()
	return t.flows.LookupIn(&k)
}

func (t *Translator) count(v Verdict, pi *pktInfo, dir int) Verdict {
	t.Stats.Verdicts[v]++
	if v == VerdictForward || v == VerdictHairpin {
		t.Stats.Packets[dir]++
		t.Stats.Bytes[dir] += uint64(len(pi.ip))
	}
	return v
}

// parse validates the packet and fills pi. For dir DirIn the ports are
// taken as seen (sport = remote, dport = public).
func (t *Translator) parse(pkt []byte, pi *pktInfo, dir int) {
	*pi = pktInfo{kind: kindDone}
	ip, ok := ParseIPv4(pkt)
	if !ok {
		pi.verdict = DropMalformed
		return
	}
	pi.ip = ip
	p := t.pol
	dst := ip.Dst()
	if dst == p.Inside || dst == p.Outside {
		pi.verdict = VerdictLocal
		return
	}
	if ip.FragOffset() != 0 {
		// Later fragments carry no ports: they follow the first
		// fragment's translation in the runtime's fragment table.
		pi.verdict = DropFragment
		return
	}
	pi.proto = ip.Protocol()
	pi.l4 = ip.Payload()
	kind, sport, dport := ReadTransport(pi.proto, pi.l4)
	switch kind {
	case TransportPorts:
		if pi.proto == ProtoTCP {
			tcp, ok := ParseTCP(pi.l4)
			if !ok {
				pi.verdict = DropMalformed
				return
			}
			pi.tcpFlags, pi.ack = tcp.Flags(), tcp.Ack()
		} else if !udpValid(pi.l4, ip.MF()) {
			pi.verdict = DropMalformed
			return
		}
		pi.sport, pi.dport = sport, dport
		pi.kind = kindPorts
	case TransportEcho:
		pi.icmpType = ICMP(pi.l4).Type()
		if pi.icmpType == ICMPEchoRequest && dir == DirIn {
			// Echo requests from outside are for natgw or an instance:
			// handled by finishIn, not by flow lookup.
			pi.kind = kindDone
			pi.verdict = VerdictForward
			pi.dport = dport
			return
		}
		// The echo id stands for the private/public port; the remote
		// "port" is 0.
		pi.kind = kindEcho
		if dir == DirOut {
			pi.sport = sport
		} else {
			pi.dport = dport
		}
	case TransportICMPError:
		pi.icmpType = ICMP(pi.l4).Type()
		pi.kind = kindICMPError
	case TransportTruncated:
		pi.verdict = DropMalformed
		return
	default:
		pi.verdict = DropUnsupported
		return
	}
	if ip.TTL() <= 1 {
		pi.kind = kindDone
		pi.verdict = DropTTLExceeded
	}
}

// udpValid reports whether l4 is a whole UDP header whose length fits; a
// first fragment (mf) carries only the header, its length covers the whole
// datagram.
func udpValid(l4 []byte, mf bool) bool {
	if mf {
		_, ok := ParseUDPEmbedded(l4)
		return ok
	}
	_, ok := ParseUDP(l4)
	return ok
}

// finishOut completes an outbound packet given its flow lookup result.
func (t *Translator) finishOut(pi *pktInfo, idx uint32, now Tick) Verdict {
	switch pi.kind {
	case kindDone:
		return pi.verdict
	case kindICMPError:
		return t.icmpErrorOut(pi)
	}
	idx = t.current(idx)
	if idx == 0 {
		if pi.kind == kindEcho && pi.icmpType == ICMPEchoReply {
			return DropNoFlow // replies only to echoes an instance accepted
		}
		var v Verdict
		if idx, v = t.createOut(pi, now); v != VerdictForward {
			return v
		}
	}
	f := t.flows.Flow(idx)
	if !t.touch(idx, f, pi, true, now) {
		return DropTCPInvalidRST
	}
	ip := pi.ip
	ip.SetChecksum(applyDeltas(ip.Checksum(), f.dAddr, ttlDecrement))
	ip.SetSrc(f.Pub)
	ip.SetTTL(ip.TTL() - 1)
	rewriteL4(pi, f.dL4, f.PrivPort, f.PubPort, true)
	if f.Flags&flagHairpin != 0 {
		return VerdictHairpin
	}
	return VerdictForward
}

// finishIn completes an inbound packet given its flow lookup result.
func (t *Translator) finishIn(pi *pktInfo, idx uint32, now Tick) Verdict {
	switch pi.kind {
	case kindDone:
		if pi.verdict != VerdictForward || pi.proto != ProtoICMP {
			return pi.verdict
		}
		return t.echoRequestIn(pi, now)
	case kindICMPError:
		return t.icmpErrorIn(pi)
	}
	idx = t.current(idx)
	if idx == 0 {
		var v Verdict
		if idx, v = t.createIn(pi, now); v != VerdictForward {
			return v
		}
	}
	return t.forwardIn(pi, idx, t.flows.Flow(idx), now)
}

func (t *Translator) forwardIn(pi *pktInfo, idx uint32, f *Flow, now Tick) Verdict {
	if !t.touch(idx, f, pi, false, now) {
		return DropTCPInvalidRST
	}
	ip := pi.ip
	ip.SetChecksum(applyDeltas(ip.Checksum(), ^f.dAddr, ttlDecrement))
	ip.SetDst(f.Priv)
	ip.SetTTL(ip.TTL() - 1)
	rewriteL4(pi, ^f.dL4, f.PubPort, f.PrivPort, false)
	return VerdictForward
}

// echoRequestIn handles an echo request from outside: answered by natgw for
// its own addresses, forwarded to an instance whose inbound rules allow
// ICMP [S6][S8], dropped otherwise.
func (t *Translator) echoRequestIn(pi *pktInfo, now Tick) Verdict {
	if pi.ip.TTL() <= 1 {
		return DropTTLExceeded
	}
	dst := pi.ip.Dst()
	if in, ok := t.pol.InstanceByPublic(dst); ok && in.AllowsInbound(ProtoICMP, 0) {
		pi.kind = kindEcho
		k := InKey{Pub: dst, Remote: pi.ip.Src(), PubPort: pi.dport, Proto: ProtoICMP}
		idx := t.current(t.flows.LookupIn(&k))
		if idx == 0 {
			var v Verdict
			if idx, v = t.createIn(pi, now); v != VerdictForward {
				return v
			}
		}
		return t.forwardIn(pi, idx, t.flows.Flow(idx), now)
	}
	if t.pol.IsPublic(dst) {
		return VerdictLocal
	}
	return DropNoFlow
}

// rewriteL4 rewrites the port (or echo id) from oldP to newP and fixes the
// transport checksum with d, the flow's precomputed address-and-port delta
// for this direction (TCP and UDP; ICMP echo has no pseudo-header and is
// updated for the identifier alone). out says the source side is
// rewritten (outbound), else the destination.
func rewriteL4(pi *pktInfo, d uint16, oldP, newP uint16, out bool) {
	l4 := pi.l4
	switch pi.kind {
	case kindEcho:
		// ICMP has no pseudo-header: only the identifier changes.
		icmp := ICMP(l4)
		icmp.SetChecksum(UpdateChecksum16(icmp.Checksum(), oldP, newP))
		icmp.SetID(newP)
		return
	}
	if pi.proto == ProtoTCP {
		tcp := TCP(l4)
		tcp.SetChecksum(applyDeltas(tcp.Checksum(), d, 0))
		if out {
			tcp.SetSrcPort(newP)
		} else {
			tcp.SetDstPort(newP)
		}
		return
	}
	udp := UDP(l4)
	if ck := udp.Checksum(); ck != 0 { // a zero UDP checksum stays zero
		ck = applyDeltas(ck, d, 0)
		if ck == 0 {
			ck = 0xFFFF
		}
		udp.SetChecksum(ck)
	}
	if out {
		udp.SetSrcPort(newP)
	} else {
		udp.SetDstPort(newP)
	}
}

// touch refreshes a flow and advances its TCP state [S5]. It reports false,
// touching nothing, for a RST whose sequence number the flow's receiver
// would not accept (tcpseq.go): the packet is dropped.
func (t *Translator) touch(idx uint32, f *Flow, pi *pktInfo, out bool, now Tick) bool {
	if f.Proto != ProtoTCP {
		t.flows.Touch(idx, now)
		return true
	}
	tcpFlags := pi.tcpFlags
	if tcpFlags&(TCPFlagRST|TCPFlagFIN|TCPFlagSYN) != 0 {
		var ok bool
		if tcpFlags, ok = tcpCheck(f, pi, out); !ok {
			return false
		}
	}
	if pi.tcpFlags&TCPFlagACK != 0 {
		w := TCP(pi.l4).Window()
		if out {
			f.AckPriv, f.winPriv = pi.ack, w
		} else {
			f.AckRemote, f.winRemote = pi.ack, w
		}
	}
	orig := out != (f.Flags&flagInbound != 0)
	st, fl := TCPTransition(f.State, f.Flags, tcpFlags, orig)
	if st != f.State || fl != f.Flags {
		t.flows.SetState(idx, st, fl, now)
	}
	t.flows.Touch(idx, now)
	return true
}

// createOut opens a flow for a new outbound connection [S1][S2].
func (t *Translator) createOut(pi *pktInfo, now Tick) (uint32, Verdict) {
	p := t.pol
	if pi.proto == ProtoTCP && pi.tcpFlags&TCPFlagRST != 0 {
		return 0, DropNoFlow
	}
	src, dst := pi.ip.Src(), pi.ip.Dst()
	if p.Martian(dst) {
		return 0, DropMartian
	}
	if p.Denied(dst, pi.proto, pi.dport) {
		return 0, DropDenied
	}
	m, v := p.Classify(src)
	if v != VerdictForward {
		return 0, v
	}
	if t.workers > 1 && m.Scenario != ScenarioInstance && p.eim && eimProto(pi.proto) && p.eimScope(m.Scope) &&
		EIMOwner(pi.proto, src, pi.sport, t.workers) != t.worker {
		return 0, VerdictHandoff // another worker's mapping
	}
	if t.srcChk != nil && p.SourceCheck {
		newBlock := m.Scenario == ScenarioDefault && m.Block.Public == 0
		if v := t.srcChk(t.base+int(pi.pos), src, newBlock); v != VerdictForward {
			return 0, v
		}
	}
	if t.redirect {
		t.redirKey = pi.outKey()
		if t.redirChk(t.base+int(pi.pos), &t.redirKey) {
			return 0, VerdictRedirect
		}
	}
	if m.Scenario == ScenarioDefault {
		// Acquire pins the block with this flow, so the management
		// core can't reclaim it underneath; every exit below that
		// doesn't keep the flow releases it.
		b, ok := p.defaultSNAT.Acquire(t.worker, src)
		if !ok {
			t.exhausted(pi, src, dst, m.Scope)
			return 0, DropPortExhausted
		}
		m.Block = b
	}
	idx, v := t.insertOut(pi, &m, src, dst, now)
	if v != VerdictForward && m.Scenario == ScenarioDefault {
		p.defaultSNAT.Release(t.worker, src)
	}
	return idx, v
}

// insertOut chooses the public port of a new outbound flow and inserts it.
func (t *Translator) insertOut(pi *pktInfo, m *Mapping, src, dst uint32, now Tick) (uint32, Verdict) {
	f := Flow{Priv: src, Pub: m.Block.Public, Remote: dst, PrivPort: pi.sport, RemotePort: pi.dport,
		Proto: pi.proto, State: initialState(pi.proto), Gen: t.pol.Gen, Scope: m.Scope}
	if t.pol.IsPublic(dst) {
		f.Flags = flagHairpin
	}
	if m.Scenario == ScenarioDefault {
		f.snat = t.snatCur // counted by the caller's Acquire
	}
	uk := portalloc.Key{Private: src, Remote: dst, RemotePort: pi.dport, Proto: pi.proto}
	var mi uint32 // the endpoint-independent mapping the flow joins, 0: a new one
	if m.Scenario == ScenarioInstance {
		f.PubPort = pi.sport // 1:1: the private 5-tuple is already unique
	} else {
		if t.usage.Count(uk) >= m.Block.Size() {
			t.exhausted(pi, src, dst, m.Scope)
			return 0, DropPortExhausted
		}
		if t.eim != nil && eimProto(pi.proto) && t.pol.eimScope(m.Scope) {
			port, i, v := t.eimPort(pi, m, src, dst)
			if v != VerdictForward {
				t.exhausted(pi, src, dst, m.Scope)
				return 0, v
			}
			f.PubPort, f.Flags, mi = port, f.Flags|flagEIM, i
		} else {
			pub := m.Block.Public
			used := func(port uint16) bool { return t.portUsed(pub, port, dst, pi.dport, pi.proto) }
			var port uint16
			var ok bool
			if pi.hinted {
				port, ok = portalloc.PickFrom(m.Block, pi.hint, &t.rand, used)
			} else {
				port, ok = portalloc.Pick(m.Block, &t.rand, used)
			}
			if !ok {
				t.exhausted(pi, src, dst, m.Scope)
				return 0, DropPortExhausted
			}
			f.PubPort = port
		}
	}
	return t.insertFlow(&f, m, mi, false, now)
}

// insertFlow admits, inserts and counts a new flow of mapping m: an
// outbound one, or (inbound) one an endpoint-independent mapping's
// filtering opened. A flow with flagEIM joins mapping mi (0: creates it).
func (t *Translator) insertFlow(f *Flow, m *Mapping, mi uint32, inbound bool, now Tick) (uint32, Verdict) {
	host := f.Priv
	if inbound {
		host = f.Remote
	}
	if v := t.admit(host, inbound); v != VerdictForward {
		return 0, v
	}
	if f.Flags&flagEIM != 0 {
		if mi = t.eimReserve(f, mi); mi == 0 {
			t.unadmit(host, inbound)
			return 0, DropFlowTableFull
		}
	}
	idx, ok := t.flows.Insert(f, now)
	if ok && m.Scenario != ScenarioInstance {
		uk := portalloc.Key{Private: f.Priv, Remote: f.Remote, RemotePort: f.RemotePort, Proto: f.Proto}
		var n int
		if n, ok = t.usage.Inc(uk); ok {
			t.hot.Created(uk, n, m.Block.Size(), m.Scope)
		} else {
			t.flows.Remove(idx)
		}
	}
	if !ok {
		if f.Flags&flagEIM != 0 {
			t.eimRelease(mi, f.Remote)
		}
		t.unadmit(host, inbound)
		return 0, DropFlowTableFull
	}
	if f.snat != 0 {
		t.snats[f.snat].flows++
	}
	t.Stats.FlowsActive[ProtoIndex(f.Proto)]++
	t.Stats.FlowsCreated[ProtoIndex(f.Proto)]++
	if t.onSess != nil {
		t.onSess(t.flows.Flow(idx), SessionCreated)
	}
	return idx, VerdictForward
}

// createIn opens a flow for an inbound connection an instance's rules
// allow [S6]; anything else unsolicited is dropped.
func (t *Translator) createIn(pi *pktInfo, now Tick) (uint32, Verdict) {
	if idx, v, ok := t.eimInbound(pi, now); ok {
		return idx, v
	}
	in, ok := t.pol.InstanceByPublic(pi.ip.Dst())
	if !ok || !in.AllowsInbound(pi.proto, pi.dport) || t.pol.drain.instances[in.Public] {
		return 0, DropNoFlow // (a draining instance opens no new flow)
	}
	if pi.proto == ProtoTCP && pi.tcpFlags&(TCPFlagSYN|TCPFlagACK|TCPFlagRST) != TCPFlagSYN {
		return 0, DropNoFlow // only a SYN opens an inbound TCP flow
	}
	if pi.kind == kindEcho && pi.icmpType != ICMPEchoRequest {
		return 0, DropNoFlow
	}
	if t.pol.Martian(pi.ip.Src()) {
		// The flow's remote would be a martian: the instance's answers,
		// established packets the outbound check never sees, would
		// leave for it (issue 14 item 1).
		return 0, DropMartian
	}
	f := Flow{Priv: in.Private, Pub: in.Public, Remote: pi.ip.Src(), PrivPort: pi.dport, PubPort: pi.dport,
		RemotePort: pi.sport, Proto: pi.proto, State: initialState(pi.proto), Flags: flagInbound,
		Gen: t.pol.Gen, Scope: ScopeInstance}
	if v := t.admit(f.Remote, true); v != VerdictForward {
		return 0, v
	}
	if t.pol.IsPublic(f.Remote) {
		f.Flags |= flagHairpin // opened by a hairpinned packet: so are its replies
	}
	idx, ok := t.flows.Insert(&f, now)
	if !ok {
		t.unadmit(f.Remote, true)
		return 0, DropFlowTableFull
	}
	t.Stats.FlowsCreated[ProtoIndex(pi.proto)]++
	t.Stats.FlowsActive[ProtoIndex(pi.proto)]++
	if t.onSess != nil {
		t.onSess(t.flows.Flow(idx), SessionCreated)
	}
	return idx, VerdictForward
}

// portUsed reports whether a public port is taken towards a destination.
// A flow of an older policy found there is re-validated first, so ports
// reclaimed by a reload are free at once [S7].
func (t *Translator) portUsed(pub uint32, port uint16, remote uint32, rport uint16, proto uint8) bool {
	k := InKey{Pub: pub, PubPort: port, Remote: remote, RemotePort: rport, Proto: proto}
	idx := t.flows.LookupIn(&k)
	if idx == 0 {
		return false
	}
	if f := t.flows.Flow(idx); f.Gen != t.pol.Gen {
		return t.revalidate(idx, f)
	}
	return true
}

func (t *Translator) exhausted(pi *pktInfo, src, dst uint32, scope uint16) {
	i := len(t.Stats.Exhausted) - 1
	if scope < ScopeDefault && int(scope) < i {
		i = int(scope)
	}
	t.Stats.Exhausted[i]++
	if t.onExh != nil {
		t.onExh(ExhaustEvent{Private: src, Remote: dst, RemotePort: pi.dport, Proto: pi.proto, Scope: scope})
	}
}

// current returns idx when it names a flow of the running policy, or one
// that re-validates against it, and 0 otherwise (no flow, or one expired
// as reclaimed by revalidate).
func (t *Translator) current(idx uint32) uint32 {
	if idx == 0 {
		return 0
	}
	if f := t.flows.Flow(idx); f.Gen != t.pol.Gen && !t.revalidate(idx, f) {
		return 0
	}
	return idx
}

// revalidate checks a flow of an older policy generation against the
// running policy: it stays if its private address still maps to the same
// public address and its port is still its own, and is expired as
// reclaimed otherwise [S7]. It reports whether the flow stays.
func (t *Translator) revalidate(idx uint32, f *Flow) bool {
	p := t.pol
	m, keep := p.keeps(f)
	if keep && f.Flags&flagDraining != 0 && !t.resumeDrained(f, &m) {
		keep = false
	}
	if !keep && p.drains(f) {
		// Make before break (drain.go): the flow stays, off its member's
		// usage, until it ends or its deadline passes.
		t.startDrain(f)
		f.Gen = p.Gen
		f.Flags &^= flagHairpin
		if p.IsPublic(f.Remote) {
			f.Flags |= flagHairpin
		}
		return true
	}
	// A flow kept in default scope is counted on the running allocator,
	// which must still give its address the flow's block.
	acquired := false
	if keep && m.Scope == ScopeDefault && (f.Scope != ScopeDefault || f.snat != t.snatCur) {
		b, ok := p.defaultSNAT.Acquire(t.worker, f.Priv)
		if ok && b != m.Block {
			p.defaultSNAT.Release(t.worker, f.Priv)
		}
		keep, acquired = ok && b == m.Block, ok && b == m.Block
	}
	// Pool and default-SNAT flows count in the port usage, instance flows
	// don't.
	uk := usageKey(f)
	if keep && f.Scope == ScopeInstance && m.Scope != ScopeInstance {
		n, ok := t.usage.Inc(uk)
		if !ok {
			if acquired {
				p.defaultSNAT.Release(t.worker, f.Priv)
			}
			keep = false
		} else {
			t.hot.Created(uk, n, m.Block.Size(), m.Scope)
		}
	}
	if keep {
		if m.Scope == ScopeInstance && f.Scope != ScopeInstance {
			t.hot.Released(uk, t.usage.Dec(uk))
		}
		if acquired || m.Scope != ScopeDefault {
			t.releaseSNAT(f) // off the allocator that counted it, if any
		}
		if acquired {
			t.countSNAT(f)
		}
		f.Gen, f.Scope = p.Gen, m.Scope
		// The reload may have added or removed the public address
		// this flow goes to.
		f.Flags &^= flagHairpin
		if p.IsPublic(f.Remote) {
			f.Flags |= flagHairpin
		}
		return true
	}
	t.release(idx, f, ExpireReclaimed)
	return false
}

// release counts and removes a flow and returns its port.
func (t *Translator) release(idx uint32, f *Flow, r ExpireReason) {
	t.expireOne(idx, f, r)
	t.flows.Remove(idx)
}

// Expire releases flows whose idle timeout or closing linger has passed
// [S5], examining at most budget flows; it reports whether more are due.
// The management core decides when each worker calls it.
func (t *Translator) Expire(now Tick, budget int) (expired int, more bool) {
	t.drain.clock = now
	return t.flows.expire(now, budget, t.expireOne, t.expireLines)
}

// expireLines returns the lines expireOne will read for f beyond the
// flow table's (expireHint): its usage count's home slot, unless it is an
// instance's or a draining flow (not counted there), and its opener's
// per-host count's home slot.
func (t *Translator) expireLines(f *Flow) (usage, host uintptr) {
	if f.Scope != ScopeInstance && f.Flags&flagDraining == 0 {
		usage = t.usage.HomeAddr(usageKey(f))
	}
	if f.Flags&flagInbound != 0 {
		return usage, t.hosts.homeAddr(f.Remote, hostOutside)
	}
	return usage, t.hosts.homeAddr(f.Priv, 0)
}

// expireOne returns an expiring flow's port and counts it; the flow table
// calls it before it removes an expired flow.
func (t *Translator) expireOne(_ uint32, f *Flow, r ExpireReason) {
	if t.onSess != nil {
		t.onSess(f, r)
	}
	if r == ExpireIdle && f.State == StateTCPEstablished && t.pol.ResetOnIdle {
		if len(t.resets) < cap(t.resets) {
			t.resets = append(t.resets, *f)
		} else {
			t.Stats.ResetsDropped++
		}
	}
	switch {
	case f.Flags&flagDraining != 0:
		t.endDrain(f, r) // it left its member's usage when it started draining
	case f.Scope != ScopeInstance:
		uk := usageKey(f)
		t.hot.Released(uk, t.usage.Dec(uk))
	}
	t.releaseSNAT(f) // on the allocator that counted it
	if f.Flags&flagEIM != 0 {
		t.eimReleaseFlow(f)
	}
	if f.Flags&flagInbound != 0 {
		t.unadmit(f.Remote, true)
	} else {
		t.unadmit(f.Priv, false)
	}
	t.Stats.FlowsExpired[r]++
	t.Stats.FlowsActive[ProtoIndex(f.Proto)]--
}

// TakeResets returns the established TCP flows that idled out since the
// last call, when the policy asks for tcp_reset_on_idle [S5]: the runtime
// sends a RST to both ends of each. The slice is valid until the next
// Expire.
func (t *Translator) TakeResets() []Flow {
	r := t.resets
	t.resets = t.resets[:0]
	return r
}

// Sweep re-validates up to budget flow slots of older policy generations,
// expiring those whose ports a reload reclaimed [S7]; the pass ends at the
// table's high-water mark (FlowTable.HighWater). Call it repeatedly
// after SetPolicy until it reports done. SetPolicy restarts it, so it
// reports done only after a whole pass under the running policy.
func (t *Translator) Sweep(budget int) (done bool) {
	c := t.flows.HighWater()
	for ; budget > 0; budget-- {
		t.sweep++
		if t.sweep > c {
			t.sweep = 0
			return true
		}
		f := t.flows.Flow(t.sweep)
		if f.State != StateFree && f.Gen != t.pol.Gen {
			t.revalidate(t.sweep, f)
		}
	}
	return false
}

func initialState(proto uint8) uint8 {
	switch proto {
	case ProtoTCP:
		return StateTCPSynSent
	case ProtoUDP:
		return StateUDP
	}
	return StateICMP
}

// ProtoName returns the protocol's name as the API and logs write it.
func ProtoName(proto uint8) string {
	switch proto {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	}
	return strconv.Itoa(int(proto))
}

// ProtoIndex maps TCP, UDP and ICMP to 0, 1, 2 for per-protocol counters.
func ProtoIndex(proto uint8) int {
	switch proto {
	case ProtoTCP:
		return 0
	case ProtoUDP:
		return 1
	}
	return 2
}
