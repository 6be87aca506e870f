package nat

// A reference model of the translator and a differential test against it
// (issue 13). The model keeps flows in plain Go maps and applies the rules
// of SPEC [S1]-[S8] one packet at a time: precedence (deny, instance, pool,
// default SNAT, no_scenario), one port per destination, blocks and tiers
// with reclaim on reload and the grace rule, reclaim = "drain" (issue 19:
// flows on ports a reload takes live on until they end or their
// deadline), idle expiry per protocol and
// TCP state, instance inbound rules, echo and ICMP errors, and the edge
// rules of issue 14: martian destinations and sources, outbound ICMP
// errors only to their flow's remote and under the deny rules, RSTs and
// FINs checked against the receiver's sequence window (the model tracks
// each side's last acknowledgement, window and scale), the per-host and
// inbound flow limits, and hairpinning (a packet to one of natgw's public
// addresses comes back through the inbound side, as the runtime does on
// VerdictHairpin). It is slow and meant to be obviously right.
//
// Where the translator is free to choose, the model checks the choice is
// legal and adopts it: the public port of a new flow (inside the member's
// block, not used towards the same destination), the default-SNAT block
// (size and frontend from the configuration, held by no other source), and
// the moment a flow that a reload reclaimed really leaves the table (the
// translator re-validates lazily, when a packet meets the flow or the
// sweep reaches it; until then the model keeps it as a "zombie" that must
// not translate anything and must be gone once the sweep is done).

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natgw/natgw/portalloc"
)

// Addresses of the model's world (SPEC §8).
var (
	mInside   = ip4("10.0.0.1")
	mOutside  = ip4("198.19.0.2")
	mFE1      = ip4("198.19.1.10")
	mFEDef    = [2]uint32{ip4("198.19.1.20"), ip4("198.19.1.21")}
	mInstPriv = [2]uint32{ip4("10.0.3.7"), ip4("10.0.1.2")}
	mInstPub  = [2]uint32{ip4("198.19.1.50"), ip4("198.19.1.51")}
	mRouter   = ip4("198.18.0.1")
	// mHosts are the private sources traffic comes from: pool members
	// (depending on the pool size), an instance, default-SNAT sources and
	// one source no scenario covers.
	mHosts = []uint32{ip4("10.0.1.1"), ip4("10.0.1.2"), ip4("10.0.1.3"), ip4("10.0.1.52"),
		ip4("10.0.1.101"), ip4("10.0.9.9"), ip4("10.0.9.10"), ip4("10.0.3.7"), ip4("172.16.0.5")}
	mRemotes = []uint32{ip4("198.18.0.10"), ip4("198.18.0.11"), ip4("198.18.99.5")}
	// mMartians are destinations no new outbound flow may have (issue 14
	// item 1); mNearMartians are ordinary ones next to them.
	mMartians = []uint32{ip4("0.0.0.0"), ip4("0.1.2.3"), ip4("127.0.0.1"), ip4("169.254.169.254"),
		ip4("224.0.0.251"), ip4("239.255.255.250"), ip4("240.0.0.1"), ip4("255.255.255.255"),
		ip4("10.0.0.0"), ip4("10.0.255.255"), ip4("10.0.3.7"), ip4("10.0.9.9"), ip4("198.19.0.255")}
	mNearMartians = []uint32{ip4("1.0.0.1"), ip4("126.255.255.255"), ip4("128.0.0.1"), ip4("169.253.255.255"),
		ip4("223.255.255.255"), ip4("10.1.0.1"), ip4("198.19.0.254"), ip4("198.19.1.255")}
	mRemotePorts = []uint16{53, 80, 25, 443, 8000}
)

// mDeny are the deny rules a policy may switch on: destination prefix
// (address, bits), protocol (0 = any), ports (lo, hi).
var mDeny = [4]struct {
	net   uint32
	bits  int
	proto uint8
	lo    uint16
	hi    uint16
}{
	{ip4("198.18.99.0"), 24, ProtoTCP, 25, 25},
	{ip4("198.18.0.11"), 32, ProtoUDP, 0, 0xFFFF},
	{ip4("198.18.0.10"), 32, 0, 0, 0xFFFF},
	{ip4("198.18.0.0"), 16, ProtoICMP, 0, 0xFFFF},
}

// mSpec is the model's own description of a configuration; policySpec
// turns it into the description the translator's policy is compiled from.
type mSpec struct {
	poolN  int  // members 10.0.1.1 .. 10.0.1.poolN (less the second instance)
	ppm    int  // pool ports_per_member, 0 = tiers
	inst2  bool // 10.0.1.2 is an instance (198.19.1.51) instead of a member
	defPPM int  // default_snat ports_per_member
	defFE  int  // index in mFEDef of the default frontend
	deny   [len(mDeny)]bool
	to     [5]int // seconds: tcp_established, tcp_transitory, tcp_closing, udp, icmp
	// hostPct and inPct are [limits] host_flow_percent and
	// inbound_flow_percent (0: left out, the defaults 25 and 50).
	hostPct, inPct int
	// eim: the pool and default SNAT map endpoint independently, with
	// filtering filt[0] (pool) and filt[1] (default SNAT) (issue 19).
	eim  bool
	filt [2]FilteringMode
	// drain is [reload] reclaim = "drain" (deadline mDrainSecs).
	drain bool
}

// mDrainSecs is the model's reload.reclaim_deadline.
const mDrainSecs = 20

// drains reports whether a flow the policy of s does not keep drains
// rather than being reclaimed (issue 19): an outbound pool flow, or one
// already draining, whose destination no deny rule blocks, under reclaim
// = "drain", unless it holds or would hold an endpoint-independent
// mapping (those are reclaimed). Pool flows are all on fe1, which every
// spec keeps.
func (s *mSpec) drains(f *mFlow) bool {
	return s.drain && (f.kind == ScenarioPool || f.draining) && !f.inbound &&
		!s.denied(f.key.Remote, f.key.Proto, f.key.RemotePort) &&
		!f.eim && !(s.eim && eimProto(f.key.Proto))
}

// policySpec returns the policy description of s.
func (s *mSpec) policySpec() PolicySpec {
	sec := func(n int) Tick { return TickFromDuration(time.Duration(n) * time.Second) }
	ps := PolicySpec{
		Inside:      Prefix{Addr: mInside, Bits: 16},
		Outside:     Prefix{Addr: mOutside, Bits: 24},
		Gateway:     ip4("198.19.0.1"),
		SourceCheck: true,
		Timeouts: Timeouts{TCPEstablished: sec(s.to[0]), TCPTransitory: sec(s.to[1]), TCPClosing: sec(s.to[2]),
			UDP: sec(s.to[3]), ICMP: sec(s.to[4])},
		HostFlowPercent:    cmp.Or(s.hostPct, 25),
		InboundFlowPercent: cmp.Or(s.inPct, 50),
		Frontends:          []uint32{mFE1, mFEDef[0], mFEDef[1]},
		Pools:              []PoolSpec{{Name: "web", Frontends: []uint32{mFE1}, PortsPerMember: s.ppm}},
		Instances: []InstanceSpec{{Private: mInstPriv[0], Public: mInstPub[0], Inbound: []PortRule{
			{Proto: ProtoTCP, Lo: 22, Hi: 22}, {Proto: ProtoTCP, Lo: 8000, Hi: 8100},
			{Proto: ProtoUDP, Lo: 0, Hi: 0xFFFF}, {Proto: ProtoICMP, Lo: 0, Hi: 0xFFFF}}}},
		DefaultSNAT: &DefaultSNATSpec{Sources: []Prefix{{Addr: ip4("10.0.0.0"), Bits: 8}},
			Frontends: []uint32{mFEDef[s.defFE]}, PortsPerMember: s.defPPM, Workers: 1},
	}
	if s.eim {
		ps.Pools[0].Mapping, ps.Pools[0].Filtering = MappingEndpointIndependent, s.filt[0]
		ps.DefaultSNAT.Mapping, ps.DefaultSNAT.Filtering = MappingEndpointIndependent, s.filt[1]
	}
	for i := 1; i <= s.poolN; i++ {
		if i == 2 && s.inst2 {
			continue
		}
		ps.Pools[0].Members = append(ps.Pools[0].Members, ip4("10.0.1.0")+uint32(i))
	}
	if s.inst2 {
		ps.Instances = append(ps.Instances, InstanceSpec{Private: mInstPriv[1], Public: mInstPub[1]})
	}
	ps.Drain = DrainSpec{Reclaim: s.drain, Deadline: sec(mDrainSecs)}
	for i, on := range s.deny {
		if d := &mDeny[i]; on {
			ps.Deny = append(ps.Deny, DenyRule{Destination: Prefix{Addr: d.net, Bits: d.bits},
				PortRule: PortRule{Proto: d.proto, Lo: d.lo, Hi: d.hi}})
		}
	}
	return ps
}

// members returns the pool member count.
func (s *mSpec) members() int {
	if s.inst2 && s.poolN >= 2 {
		return s.poolN - 1
	}
	return s.poolN
}

// blockSize is the [S3] tier table, written out again.
func (s *mSpec) blockSize() int {
	if s.ppm != 0 {
		return s.ppm
	}
	n := s.members()
	switch {
	case n <= 50:
		return 1024
	case n <= 100:
		return 512
	case n <= 200:
		return 256
	case n <= 400:
		return 128
	case n <= 800:
		return 64
	}
	return 32
}

// classify is [S1] after the deny rules: the scenario of a private source.
func (s *mSpec) classify(src uint32) Scenario {
	if src == mInstPriv[0] || (s.inst2 && src == mInstPriv[1]) {
		return ScenarioInstance
	}
	if src&0xFFFFFF00 == ip4("10.0.1.0") {
		if i := int(src & 0xFF); i >= 1 && i <= s.poolN && !(i == 2 && s.inst2) {
			return ScenarioPool
		}
	}
	if src>>24 == 10 {
		return ScenarioDefault
	}
	return ScenarioNone
}

// instancePublic returns the public address of instance src.
func (s *mSpec) instancePublic(src uint32) uint32 {
	if src == mInstPriv[0] {
		return mInstPub[0]
	}
	return mInstPub[1]
}

// instanceByPublic returns the private address of the instance owning pub.
func (s *mSpec) instanceByPublic(pub uint32) (uint32, bool) {
	if pub == mInstPub[0] {
		return mInstPriv[0], true
	}
	if s.inst2 && pub == mInstPub[1] {
		return mInstPriv[1], true
	}
	return 0, false
}

// allowsInbound is [S6]: only the first instance has inbound rules.
func (s *mSpec) allowsInbound(priv uint32, proto uint8, port uint16) bool {
	if priv != mInstPriv[0] {
		return false
	}
	switch proto {
	case ProtoTCP:
		return port == 22 || (port >= 8000 && port <= 8100)
	case ProtoUDP, ProtoICMP:
		return true
	}
	return false
}

// denied reports whether a deny rule of s blocks outbound traffic [S1].
func (s *mSpec) denied(dst uint32, proto uint8, port uint16) bool {
	for i, on := range s.deny {
		r := &mDeny[i]
		if !on || dst>>(32-r.bits) != r.net>>(32-r.bits) || (r.proto != 0 && r.proto != proto) {
			continue
		}
		if proto == ProtoICMP || (port >= r.lo && port <= r.hi) {
			return true
		}
	}
	return false
}

// martian reports whether no new outbound flow may go to dst (issue 14
// item 1): 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4 and
// 240.0.0.0/4 (255.255.255.255 included), the inside network 10.0.0.0/16
// (its broadcast included) and the outside subnet's broadcast
// 198.19.0.255 (the configuration's inside and outside addresses).
func (s *mSpec) martian(dst uint32) bool {
	switch a := dst >> 24; {
	case a == 0, a == 127, a >= 224, dst>>16 == 169<<8|254:
		return true
	}
	return dst>>16 == 10<<8 || dst == ip4("198.19.0.255")
}

// limits returns the [limits] in flows of the model's table (RFC 6888
// REQ-4, issue 14 item 7): per host and for all flows opened from the
// outside, 0 for none (100 %).
func (s *mSpec) limits() (perHost, inbound int) {
	lim := func(pct, def int) int {
		if pct == 0 {
			pct = def
		}
		if pct >= 100 {
			return 0
		}
		return max(1, mCapacity*pct/100)
	}
	return lim(s.hostPct, 25), lim(s.inPct, 50)
}

// isPublic reports whether natgw answers for a on the outside.
func (s *mSpec) isPublic(a uint32) bool {
	if a == mOutside || a == mFE1 || a == mFEDef[0] || a == mFEDef[1] {
		return true
	}
	_, ok := s.instanceByPublic(a)
	return ok
}

// timeout is the idle timeout of a flow state [S5].
func (s *mSpec) timeout(state uint8) Tick {
	i := map[uint8]int{StateTCPEstablished: 0, StateTCPSynSent: 1, StateTCPClosing: 2, StateUDP: 3, StateICMP: 4}[state]
	return Tick(s.to[i] * 1000)
}

const (
	mCapacity = 2048
	mSlot     = Tick(128)
	mFarthest = (4096 - 1) * mSlot
)

// mFlow is a flow of the model.
type mFlow struct {
	key          OutKey
	pub          uint32
	pubPort      uint16
	state, flags uint8
	inbound      bool
	kind         Scenario
	last         Tick
	slot         Tick // start of the wheel slot the flow is filed in
	// alloc is the default-SNAT assigner that counts the flow.
	alloc *portalloc.DefaultSNAT
	// pending: a reload left it to the translator whether the flow stays
	// (default_snat changed: it stays when the source got the same block).
	pending bool
	// grace: the flow keeps a port outside its member's block [S7].
	grace bool
	// draining: a reload took the flow's port and it drains (issue 19);
	// its deadline lies between drainLo and drainHi (the translator marks
	// it when it re-validates it, under the reload of the model's
	// decision or a later one; drainLo, once set, stays the earliest).
	draining         bool
	drainLo, drainHi Tick
	// TCP sequence state (issue 14 item 4): the acknowledgement and the
	// (unscaled) window of each side's last segment with ACK, and each
	// side's window scale from its SYN, plus one (0: not seen).
	ackPriv, ackRemote uint32
	winPriv, winRemote uint16
	wsPriv, wsRemote   uint8
	// eim: the flow holds its private endpoint's endpoint-independent
	// mapping (issue 19).
	eim bool
}

// inKey is the flow's public 5-tuple.
func (f *mFlow) inKey() InKey {
	return InKey{Pub: f.pub, Remote: f.key.Remote, PubPort: f.pubPort, RemotePort: f.key.RemotePort, Proto: f.key.Proto}
}

// usageKey is the key the flow counts under in the per-destination usage [S2].
func (f *mFlow) usageKey() portalloc.Key {
	return portalloc.Key{Private: f.key.Priv, Remote: f.key.Remote, RemotePort: f.key.RemotePort, Proto: f.key.Proto}
}

// model is the reference translator.
type model struct {
	spec    mSpec
	pol     *Policy // for the blocks the compiler laid out (checked, then adopted)
	flows   map[OutKey]*mFlow
	zombies map[OutKey]*mFlow // reclaimed by a reload, maybe not yet by the translator
	// dead are flows that left recently, for packets and ICMP errors
	// about flows that are gone.
	dead   map[OutKey]*mFlow
	cursor Tick
	// defBlocks are the blocks the running default-SNAT assigner gave
	// sources so far (the model adopts its choice when a source's first
	// flow is created).
	defBlocks map[uint32]portalloc.Block

	verdicts [NumVerdicts]uint64
	packets  [2]uint64
	created  [3]uint64
	cov      *mCoverage
}

// mCoverage counts what a run exercised, so a reader can see the
// generator reaches the interesting cases.
type mCoverage struct {
	Verdicts          [NumVerdicts]uint64
	Reloads, Reclaims uint64
	GraceKeeps        uint64 // flows kept on a port outside their new block [S7]
	PendingKept       uint64 // default-SNAT flows kept across a default_snat change
	Resurrected       uint64 // reclaimed flows a later reload gave their port back
	Drains            uint64 // flows a reload made drain (reclaim = "drain")
	DrainEnds         uint64 // draining flows gone at or after their earliest deadline
	IdleExpiries      uint64
	Sweeps            uint64 // sweeps run to completion
	Bursts, Fragments uint64
	// Issue 19: new flows that joined an existing endpoint-independent
	// mapping, inbound flows filtering opened, inbound packets to a
	// mapping it kept out.
	EIMJoined, EIMOpened, EIMFiltered uint64
}

// bury remembers a flow that left, for the generator (runModel forgets
// them now and then, outside any map iteration, so a seed stays
// deterministic).
func (m *model) bury(f *mFlow) { m.dead[f.key] = f }

// ceilSlot rounds a time up to the start of a wheel slot.
func ceilSlot(t Tick) Tick { return (t + mSlot - 1) &^ (mSlot - 1) }

// file puts f on the model's wheel for deadline, as of the given cursor.
func (m *model) file(f *mFlow, deadline, cursor Tick) {
	start := ceilSlot(deadline)
	if d := int32(start - cursor); d < 0 {
		start = cursor
	} else if d > int32(mFarthest) {
		start = cursor + mFarthest
	}
	f.slot = start
}

// byIn returns the live flow with public 5-tuple k.
func (m *model) byIn(k InKey) *mFlow {
	for _, f := range m.flows {
		if f.inKey() == k {
			return f
		}
	}
	return nil
}

// zombieIn returns the reclaimed flow with public 5-tuple k.
func (m *model) zombieIn(k InKey) *mFlow {
	for _, f := range m.zombies {
		if f.inKey() == k {
			return f
		}
	}
	return nil
}

// usage counts the model's flows (live, or zombie when withZombies) of a
// private source towards a destination that take a SNAT port.
func (m *model) usage(k portalloc.Key, withZombies bool) int {
	n := 0
	count := func(fs map[OutKey]*mFlow) {
		for _, f := range fs {
			if f.kind != ScenarioInstance && f.usageKey() == k {
				n++
			}
		}
	}
	count(m.flows)
	if withZombies {
		count(m.zombies)
	}
	return n
}

// limited is issue 14 item 7 for a new flow opened by host (an outside
// host when inbound): whether the limits refuse it, and with which
// verdict. The translator counts a flow from its creation to its release,
// so flows a reload left pending or reclaimed count until it meets them
// (or its sweep does): they may, but need not, make a host reach its
// limit, like ports in predict. ok is false when the flow is admitted.
func (r *mRun) limited(host uint32, inbound bool, got Verdict) (Verdict, bool) {
	m := r.m
	perHost, inLimit := m.spec.limits()
	if !inbound {
		inLimit = 0
	}
	if n := len(m.flows) + len(m.zombies); (perHost == 0 || n < perHost) && (inLimit == 0 || n < inLimit) {
		return 0, false // no count can reach a limit: spare the loop
	}
	var hostSure, hostAll, inSure, inAll int
	for i, set := range []map[OutKey]*mFlow{m.flows, m.zombies} {
		for _, f := range set {
			sure := i == 0 && !f.pending
			opener := f.key.Priv
			if f.inbound {
				opener = f.key.Remote
				inAll++
				inSure += b2i(sure)
			}
			if f.inbound == inbound && opener == host {
				hostAll++
				hostSure += b2i(sure)
			}
		}
	}
	if inbound && inLimit > 0 {
		if inSure >= inLimit {
			return DropInboundLimit, true
		}
		if got == DropInboundLimit && inAll >= inLimit {
			return got, true
		}
	}
	if perHost > 0 {
		if hostSure >= perHost {
			return DropHostLimit, true
		}
		if got == DropHostLimit && hostAll >= perHost {
			return got, true
		}
	}
	return 0, false
}

// portTaken reports whether a live flow holds pub:port towards a
// destination.
func (m *model) portTaken(pub uint32, port uint16, remote uint32, rport uint16, proto uint8) bool {
	return m.byIn(InKey{Pub: pub, Remote: remote, PubPort: port, RemotePort: rport, Proto: proto}) != nil
}

// eimFor reports whether a new flow of scenario kind and protocol proto
// holds an endpoint-independent mapping (issue 19).
func (s *mSpec) eimFor(kind Scenario, proto uint8) bool {
	return s.eim && (kind == ScenarioPool || kind == ScenarioDefault) && (proto == ProtoTCP || proto == ProtoUDP)
}

// mappingOf returns the public endpoint of a private endpoint's
// endpoint-independent mapping: sure when a live flow that is not pending
// holds it (the translator has it), held when any flow does (a reclaimed
// or pending one may or may not still hold it).
func (m *model) mappingOf(proto uint8, priv uint32, port uint16) (pub uint32, pubPort uint16, sure, held bool) {
	for i, set := range []map[OutKey]*mFlow{m.flows, m.zombies} {
		for _, f := range set {
			if f.eim && f.key.Proto == proto && f.key.Priv == priv && f.key.PrivPort == port {
				pub, pubPort, held = f.pub, f.pubPort, true
				sure = sure || (i == 0 && !f.pending)
			}
		}
	}
	return pub, pubPort, sure, held
}

// mappingAt returns a flow of the endpoint-independent mapping that holds
// public endpoint pub:port (sure and held as for mappingOf), and whether
// some flow of it has remote address remote: surely (live, not pending)
// and maybe.
func (m *model) mappingAt(proto uint8, pub uint32, port uint16, remote uint32) (of *mFlow, sure, held, remoteSure, remoteAny bool) {
	for i, set := range []map[OutKey]*mFlow{m.flows, m.zombies} {
		for _, f := range set {
			if !f.eim || f.key.Proto != proto || f.pub != pub || f.pubPort != port {
				continue
			}
			certain := i == 0 && !f.pending
			if of == nil || certain {
				of = f
			}
			held = true
			sure = sure || certain
			if f.key.Remote == remote {
				remoteAny = true
				remoteSure = remoteSure || certain
			}
		}
	}
	return of, sure, held, remoteSure, remoteAny
}

// eimFree counts the ports of blk a new endpoint-independent mapping may
// take towards remote:rport: no flow's mapping holds them, and no flow
// (least) or no live flow that is not pending (most) uses them towards
// that destination.
func (m *model) eimFree(blk portalloc.Block, proto uint8, remote uint32, rport uint16) (least, most int) {
	held := map[uint16]bool{}
	takenAll := map[uint16]bool{}
	takenSure := map[uint16]bool{}
	for i, set := range []map[OutKey]*mFlow{m.flows, m.zombies} {
		for _, f := range set {
			if f.pub != blk.Public || !blk.Contains(f.pubPort) || f.key.Proto != proto {
				continue
			}
			if f.eim {
				held[f.pubPort] = true
			}
			if f.key.Remote == remote && f.key.RemotePort == rport {
				takenAll[f.pubPort] = true
				if i == 0 && !f.pending {
					takenSure[f.pubPort] = true
				}
			}
		}
	}
	for p := int(blk.First); p <= int(blk.Last); p++ {
		if held[uint16(p)] {
			continue
		}
		if !takenAll[uint16(p)] {
			least++
		}
		if !takenSure[uint16(p)] {
			most++
		}
	}
	return least, most
}

// tcp is the TCP tracking of [S5]: RST closes; FINs both ways close; a
// reply establishes a half-open flow; a new SYN from the opener reopens a
// closing flow.
func mTCP(state, flags, tcpFlags uint8, orig, opening bool) (uint8, uint8) {
	if tcpFlags&TCPFlagRST != 0 {
		return StateTCPClosing, flags | FlagRST
	}
	fin := FlagFinIn
	if orig {
		fin = FlagFinOut
	}
	if state == StateTCPClosing {
		if orig && tcpFlags&(TCPFlagSYN|TCPFlagACK) == TCPFlagSYN {
			return StateTCPSynSent, 0
		}
		if tcpFlags&TCPFlagFIN != 0 {
			flags |= fin
		}
		return state, flags
	}
	if state == StateTCPSynSent && !orig && !opening {
		state = StateTCPEstablished
	}
	if tcpFlags&TCPFlagFIN != 0 {
		flags |= fin
		if flags&(FlagFinOut|FlagFinIn) == FlagFinOut|FlagFinIn {
			state = StateTCPClosing
		}
	}
	return state, flags
}

// mWindow is a side's receive window: its window field shifted by its
// scale; a side whose SYN natgw never saw gets the largest shift (14), the
// most liberal window.
func mWindow(w uint16, ws uint8) uint32 {
	shift := uint32(14)
	if ws != 0 {
		shift = min(uint32(ws-1), 14)
	}
	return uint32(w) << shift
}

// seqCheck is issue 14 item 4 (RFC 5961 §3, as conntrack does it) for a
// segment of TCP flow f (out: from the private side). It returns the flags
// the state tracking must see and false when the segment is dropped
// (tcp_invalid_rst):
//   - a RST answering the opener's SYN (the flow half-open, the RST from
//     the other side) must acknowledge it: ACK set and the number the
//     opener's SYN taught (seq+1), unless none was learnt;
//   - otherwise a RST carrying exactly what the receiver acknowledged last
//     closes the flow (or anything, when the receiver acknowledged
//     nothing yet); one inside the receiver's window passes without its
//     RST (the host challenges it, RFC 5961 §3.2); any other is dropped;
//   - a FIN whose end lies outside the receiver's window passes without
//     counting as a FIN.
//
// SYNs are never refused.
func (f *mFlow) seqCheck(g *gpkt, out bool) (uint8, bool) {
	fl := g.flags
	if f.key.Proto != ProtoTCP || g.kind == gFragLater || fl&(TCPFlagRST|TCPFlagFIN) == 0 || fl&TCPFlagSYN != 0 {
		return fl, true
	}
	// The receiver's last acknowledgement and window, the sender's last
	// acknowledgement.
	expect, win, sender := f.ackRemote, mWindow(f.winRemote, f.wsRemote), f.ackPriv
	if !out {
		expect, win, sender = f.ackPriv, mWindow(f.winPriv, f.wsPriv), f.ackRemote
	}
	win = max(win, 1)
	if fl&TCPFlagRST != 0 {
		if f.state == StateTCPSynSent && out == f.inbound {
			return fl, sender == 0 || (fl&TCPFlagACK != 0 && g.ack == sender)
		}
		switch {
		case expect == 0 || g.seq == expect:
			return fl, true
		case g.seq-expect < win:
			return fl &^ TCPFlagRST, true
		}
		return fl, false
	}
	if expect != 0 && g.seq+uint32(len(g.payload))-expect >= win {
		fl &^= TCPFlagFIN
	}
	return fl, true
}

// learnSeq updates f's sequence state for a segment that passed seqCheck,
// before the state tracking sees it. A SYN without ACK from the opener of
// a half-open or closing flow starts the state over: the other side must
// now acknowledge its sequence number plus one, the opener acknowledged
// nothing, and only the opener's scale is known. The other side's SYN
// (with ACK, as an answer) on a half-open flow gives that side's scale.
// Any segment with ACK records its acknowledgement and window.
func (f *mFlow) learnSeq(g *gpkt, out bool) {
	if f.key.Proto != ProtoTCP || g.kind == gFragLater {
		return
	}
	orig := out != f.inbound
	if g.flags&TCPFlagSYN != 0 {
		ws := uint8(1)
		if g.wscale >= 0 {
			ws = uint8(min(g.wscale, 14)) + 1
		}
		switch {
		case g.flags&TCPFlagACK == 0 && orig && (f.state == StateTCPSynSent || f.state == StateTCPClosing):
			if out {
				f.ackRemote, f.ackPriv, f.wsPriv, f.wsRemote = g.seq+1, 0, ws, 0
			} else {
				f.ackPriv, f.ackRemote, f.wsRemote, f.wsPriv = g.seq+1, 0, ws, 0
			}
		case f.state == StateTCPSynSent && !orig:
			if out {
				f.wsPriv = ws
			} else {
				f.wsRemote = ws
			}
		}
	}
	if g.flags&TCPFlagACK != 0 {
		if out {
			f.ackPriv, f.winPriv = g.ack, g.win
		} else {
			f.ackRemote, f.winRemote = g.ack, g.win
		}
	}
}

// touch refreshes a flow for a packet (out: from the private side).
func (m *model) touch(f *mFlow, g *gpkt, out bool, now Tick) {
	f.last = now
	if f.key.Proto != ProtoTCP || g.kind == gFragLater {
		return
	}
	orig := out != f.inbound
	flags, ok := f.seqCheck(g, out)
	if !ok {
		panic("touch: a segment seqCheck drops") // predict returned the drop
	}
	f.learnSeq(g, out)
	st, fl := mTCP(f.state, f.flags, flags, orig, false)
	if st != f.state && m.spec.timeout(st) < m.spec.timeout(f.state) {
		m.file(f, now+m.spec.timeout(st), m.cursor)
	}
	f.state, f.flags = st, fl
}

// insert adds a new flow opened by packet g.
func (m *model) insert(f *mFlow, g *gpkt, now Tick) {
	f.last = now
	switch f.key.Proto {
	case ProtoTCP:
		// The opening segment (SYN or not, never RST) passes seqCheck
		// and teaches the new flow what it can.
		f.state = StateTCPSynSent
		f.learnSeq(g, g.dir == DirOut)
		f.state, f.flags = mTCP(StateTCPSynSent, 0, g.flags, true, true)
	case ProtoUDP:
		f.state = StateUDP
	default:
		f.state = StateICMP
	}
	// The table files a new flow with its initial state's timeout.
	initial := map[uint8]uint8{ProtoTCP: StateTCPSynSent, ProtoUDP: StateUDP, ProtoICMP: StateICMP}[f.key.Proto]
	m.file(f, now+m.spec.timeout(initial), m.cursor)
	if f.state != initial && m.spec.timeout(f.state) < m.spec.timeout(initial) {
		m.file(f, now+m.spec.timeout(f.state), m.cursor)
	}
	m.flows[f.key] = f
	delete(m.zombies, f.key)
	m.created[ProtoIndex(f.key.Proto)]++
}

// expire is [S5] with the flow table's granularity: a flow leaves when the
// wheel slot it is filed in comes up and its deadline (last packet plus
// its state's timeout) has passed; otherwise it is filed again.
func (m *model) expire(now Tick) {
	due := now &^ (mSlot - 1)
	if int32(due-m.cursor) > int32(mFarthest) {
		m.cursor = due - mFarthest
	}
	jump := m.cursor
	for changed := true; changed; {
		changed = false
		for k, f := range m.flows {
			if int32(due-f.slot) < 0 {
				continue
			}
			deadline := f.last + m.spec.timeout(f.state)
			if int32(now-deadline) >= 0 {
				delete(m.flows, k)
				m.bury(f)
				m.cov.IdleExpiries++
				continue
			}
			at := f.slot
			if int32(jump-at) > 0 {
				at = jump
			}
			m.file(f, deadline, at)
			if int32(due-f.slot) >= 0 {
				changed = true
			}
		}
	}
	m.cursor = due + mSlot
}

// reload applies a new configuration [S7]: flows whose public address or
// port are no longer their source's, or whose destination a deny rule now
// blocks, are reclaimed; members whose block did not shrink keep every
// flow they had (growth and unchanged blocks alike, across any number of
// reloads).
func (m *model) reload(s mSpec, p *Policy, now Tick) {
	old, oldPol := m.spec, m.pol
	m.spec, m.pol = s, p
	if p.DefaultSNAT() != oldPol.DefaultSNAT() {
		m.defBlocks = map[uint32]portalloc.Block{}
	}
	for k, f := range m.flows {
		keep := false
		if f.draining {
			// Kept again only where the compiled policy gives the port
			// back (its block or grace), as Policy.Keeps decides.
			keep = m.keepsPool(f, s, p)
			f.draining = !keep
		} else if !f.inbound && s.denied(f.key.Remote, f.key.Proto, f.key.RemotePort) {
			keep = false
		} else {
			switch s.classify(f.key.Priv) {
			case ScenarioInstance:
				keep = f.kind == ScenarioInstance && f.pub == s.instancePublic(f.key.Priv)
			case ScenarioPool:
				nb := m.block(f.key.Priv)
				if f.kind == ScenarioPool && old.classify(f.key.Priv) == ScenarioPool && f.pub == nb.Public {
					ob, _ := oldPol.Classify(f.key.Priv)
					switch {
					case nb.Contains(f.pubPort):
						keep, f.grace = true, false
					case nb.Size() >= ob.Block.Size():
						keep, f.grace = true, true
						m.cov.GraceKeeps++
					}
				}
			case ScenarioDefault:
				if f.kind == ScenarioDefault {
					if f.alloc == p.DefaultSNAT() {
						keep = true
					} else {
						// A new assigner: the flow stays if its source
						// has been given a block holding its port by the
						// time the translator re-validates it.
						keep, f.pending = true, true
					}
				}
			}
		}
		if !keep && s.drains(f) {
			m.startDrain(f, now)
			continue
		}
		if !keep {
			delete(m.flows, k)
			m.zombies[k] = f
			m.cov.Reclaims++
		}
	}
	// A flow an earlier reload reclaimed, which the translator has not
	// met since (it re-validates lazily), is checked against the newest
	// policy only: when that gives its port back (a block grown again, a
	// deny rule removed) it lives on. Nothing could observe it in
	// between, and no other flow took its public 5-tuple meanwhile (that
	// would have re-validated it), so the model accepts this. The block
	// and grace are the compiler's (checked by checkLayout and by the
	// grace rule above for live flows).
	for k, z := range m.zombies {
		if z.kind == ScenarioPool && !m.keepsPool(z, s, p) && s.drains(z) {
			// The translator will drain it when it meets it.
			delete(m.zombies, k)
			m.flows[k] = z
			m.startDrain(z, now)
			continue
		}
		if !z.inbound && s.denied(z.key.Remote, z.key.Proto, z.key.RemotePort) || s.classify(z.key.Priv) != z.kind {
			continue
		}
		mp, _ := p.Classify(z.key.Priv)
		back := false
		switch z.kind {
		case ScenarioInstance:
			back = z.pub == s.instancePublic(z.key.Priv)
		case ScenarioPool:
			z.grace = !mp.Block.Contains(z.pubPort)
			back = mp.Block.Public == z.pub && (mp.Block.Contains(z.pubPort) || mp.Grace.Public == z.pub && mp.Grace.Contains(z.pubPort))
		case ScenarioDefault:
			if z.alloc == p.DefaultSNAT() {
				b, ok := m.defBlocks[z.key.Priv]
				back = ok && b.Public == z.pub && b.Contains(z.pubPort)
			}
		}
		if back {
			delete(m.zombies, k)
			z.draining = false
			m.flows[k] = z
			m.cov.Resurrected++
		}
	}
}

// keepsPool is Policy.Keeps for a pool flow under s compiled as p: its
// member's block or grace holds its port, and no deny rule blocks it.
func (m *model) keepsPool(f *mFlow, s mSpec, p *Policy) bool {
	if s.classify(f.key.Priv) != ScenarioPool || s.denied(f.key.Remote, f.key.Proto, f.key.RemotePort) {
		return false
	}
	mp, _ := p.Classify(f.key.Priv)
	if mp.Block.Public != f.pub || !(mp.Block.Contains(f.pubPort) || mp.Grace.Public == f.pub && mp.Grace.Contains(f.pubPort)) {
		return false
	}
	f.grace = !mp.Block.Contains(f.pubPort)
	return true
}

// startDrain marks f draining after a reload at now.
func (m *model) startDrain(f *mFlow, now Tick) {
	dl := now + TickFromDuration(mDrainSecs*time.Second)
	if f.drainLo == 0 {
		f.drainLo = dl
	}
	if !f.draining {
		m.cov.Drains++
	}
	f.draining, f.drainHi, f.grace = true, dl, false
}

// expireDrained follows a complete ExpireDrained pass at r.now: a
// draining flow may be gone once its earliest deadline passed (the
// translator says which), and one the translator marked under the
// running policy must be gone once its latest deadline passed.
func (r *mRun) expireDrained() {
	m, gen := r.m, r.gen()
	for k, f := range m.flows {
		if !f.draining || int32(r.now-f.drainLo) < 0 {
			continue
		}
		rf := r.realOut(k)
		if rf == nil || rf.Pub != f.pub || rf.PubPort != f.pubPort {
			delete(m.flows, k)
			m.bury(f)
			m.cov.DrainEnds++
			continue
		}
		if rf.Gen == gen && rf.Flags&flagDraining != 0 && int32(r.now-f.drainHi) >= 0 {
			r.failf("flow %v on %s:%d still draining at %d, its deadline was at most %d", k, AddrFrom(f.pub), f.pubPort, r.now, f.drainHi)
			return
		}
	}
}

// block returns the block the compiled policy gives pool member src.
func (m *model) block(src uint32) portalloc.Block {
	mp, _ := m.pol.Classify(src)
	return mp.Block
}

// gkind is the kind of a generated packet.
type gkind uint8

const (
	gPlain     gkind = iota // TCP, UDP or echo
	gError                  // ICMP error quoting a flow's packet
	gFragFirst              // first fragment of a UDP datagram
	gFragLater              // a later fragment (through the fragment path)
)

// gpkt is a generated packet: its description and its bytes.
type gpkt struct {
	kind         gkind
	dir          int
	proto        uint8 // of the packet (ICMP for errors)
	src, dst     uint32
	sport, dport uint16 // echo: id as sport (out) or dport (in)
	flags        uint8
	icmpType     uint8
	ttl          uint8
	zeroUDP      bool
	corrupt      bool // ICMP error with a bad checksum
	// TCP: sequence and acknowledgement numbers, window, and the window
	// scale a SYN announces (-1: no option).
	seq, ack uint32
	win      uint16
	wscale   int8
	payload  []byte
	// Errors: the quoted packet's 5-tuple (as sent), and the quoted packet
	// as it must look once translated (for its transport checksum).
	qProto               uint8
	qSrc, qDst           uint32
	qSport, qDport       uint16
	fragSport, fragDport uint16 // later fragments: the datagram's ports
	b                    []byte
}

// echo reports whether a plain packet is an ICMP echo.
func (g *gpkt) echo() bool { return g.kind != gError && g.proto == ProtoICMP }

// build writes the packet's bytes.
func (g *gpkt) build() {
	b := make([]byte, 256)
	var n int
	switch {
	case g.kind == gError:
		q := make([]byte, 256)
		qn := mBuild(q, g.qProto, g.qSrc, g.qDst, g.qSport, g.qDport, TCPFlagACK, ICMPEchoRequest, 60, []byte("quoted payload"))
		typ, code := uint8(ICMPDestUnreachable), uint8(3)
		if g.icmpType == ICMPTimeExceeded {
			typ, code = ICMPTimeExceeded, 0
		}
		n = BuildICMPError(b, g.src, g.dst, typ, code, 0, IPv4(q[:qn]), g.ttl)
		if g.corrupt {
			b[IPv4MinLen+2] ^= 0x5a
		}
	case g.proto == ProtoTCP:
		n = mBuildTCP(b, g)
	default:
		n = mBuild(b, g.proto, g.src, g.dst, g.sport, g.dport, g.flags, g.icmpType, g.ttl, g.payload)
		if g.proto == ProtoUDP && g.zeroUDP {
			binary.BigEndian.PutUint16(b[IPv4MinLen+6:], 0)
		}
	}
	b = b[:n]
	if g.kind == gFragFirst || g.kind == gFragLater {
		// The datagram's first 8+16 bytes of payload, then the rest.
		ip := IPv4(b)
		hdr := append([]byte(nil), b[:IPv4MinLen]...)
		var f []byte
		if g.kind == gFragFirst {
			f = append(hdr, ip.Payload()[:24]...)
			f[6], f[7] = 0x20, 0
		} else {
			f = append(hdr, ip.Payload()[24:]...)
			f[6], f[7] = 0, 3
		}
		fi := IPv4(f)
		fi.SetTotalLen(uint16(len(f)))
		fi.SetID(0x4242)
		fi.SetChecksum(0)
		fi.SetChecksum(fi.ComputeChecksum())
		b = f
	}
	g.b = b
}

// mBuildTCP writes g's TCP segment: its sequence and acknowledgement
// numbers, window, and on a SYN a window scale option (RFC 7323) padded
// with a no-operation when g asks for one.
func mBuildTCP(b []byte, g *gpkt) int {
	data := g.payload
	if g.wscale >= 0 {
		data = append([]byte{3, 3, byte(g.wscale), 1}, data...)
	}
	n := BuildTCP(b, TCPSegment{Src: g.src, Dst: g.dst, SrcPort: g.sport, DstPort: g.dport, Seq: g.seq, Ack: g.ack, Flags: g.flags, TTL: g.ttl, Payload: data})
	t := TCP(b[IPv4MinLen:n])
	if g.wscale >= 0 {
		t[12] = (TCPMinLen + 4) / 4 << 4
	}
	binary.BigEndian.PutUint16(t[14:], g.win)
	binary.BigEndian.PutUint16(t[16:], 0)
	binary.BigEndian.PutUint16(t[16:], Fold(Sum(t, PseudoHeaderSum(g.src, g.dst, ProtoTCP, uint16(len(t))))))
	return n
}

// mBuild writes a TCP, UDP or echo packet with valid checksums.
func mBuild(b []byte, proto uint8, src, dst uint32, sport, dport uint16, flags, icmpType, ttl uint8, payload []byte) int {
	switch proto {
	case ProtoTCP:
		return BuildTCP(b, TCPSegment{Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Seq: 7777, Ack: 1, Flags: flags, TTL: ttl, Payload: payload})
	case ProtoUDP:
		return BuildUDP(b, src, dst, sport, dport, ttl, payload)
	}
	id := sport // the echo id: as the source port going out, the destination port coming in
	if id == 0 {
		id = dport
	}
	return BuildICMPEcho(b, src, dst, icmpType, id, 9, ttl, payload)
}

// mRun drives the real translator and the model side by side.
type mRun struct {
	t        *Translator
	m        *model
	rng      *rand.Rand
	now      Tick
	sweeping bool
	spread   int     // private ports drawn from 1000..1000+spread
	frags    []*gpkt // later fragments waiting for their turn
	trace    []string
	err      error
}

// logf adds a line to the trace printed with a discrepancy.
func (r *mRun) logf(format string, args ...any) {
	if len(r.trace) >= 60 {
		r.trace = r.trace[1:]
	}
	r.trace = append(r.trace, fmt.Sprintf("t=%d ", r.now)+fmt.Sprintf(format, args...))
}

// failf records the first discrepancy.
func (r *mRun) failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// realOut returns the translator's flow under a private 5-tuple.
func (r *mRun) realOut(k OutKey) *Flow {
	if idx := r.t.flows.LookupOut(&k); idx != 0 {
		return r.t.flows.Flow(idx)
	}
	return nil
}

// gen is the running policy generation.
func (r *mRun) gen() uint32 { return r.t.Policy().Gen }

// live returns the model's live flow under k (nil for none). A zombie met
// by a packet is gone: the translator re-validates what it meets. A
// pending flow's fate is read from the translator.
func (r *mRun) live(f *mFlow, zombie *mFlow) *mFlow {
	m := r.m
	if f != nil && f.pending {
		if b, ok := m.defBlocks[f.key.Priv]; ok && b.Public == f.pub && b.Contains(f.pubPort) {
			r.adoptKept(f)
		} else {
			delete(m.flows, f.key)
			m.bury(f)
			f = nil
		}
	}
	if zombie != nil {
		delete(m.zombies, zombie.key)
		m.bury(zombie)
	}
	return f
}

// adoptKept accepts that the translator kept a pending default-SNAT flow,
// which is legal only on the block its source now holds.
func (r *mRun) adoptKept(f *mFlow) {
	f.pending = false
	r.m.cov.PendingKept++
	d := r.m.pol.DefaultSNAT()
	f.alloc = d
	if b, ok := d.Lookup(f.key.Priv); !ok || b.Public != f.pub || !b.Contains(f.pubPort) {
		r.failf("default-SNAT flow %v on %s:%d kept after default_snat changed, but its source's block is %v (ok=%v)",
			f.key, AddrFrom(f.pub), f.pubPort, b, ok)
	}
}

// liveOut and liveIn are live for a private and a public 5-tuple.
func (r *mRun) liveOut(k OutKey) *mFlow { return r.live(r.m.flows[k], r.m.zombies[k]) }
func (r *mRun) liveIn(k InKey) *mFlow   { return r.live(r.m.byIn(k), r.m.zombieIn(k)) }

// check compares the translator's verdict and output for one packet with
// the model, which it then updates.
func (r *mRun) check(g *gpkt, in []byte, got Verdict, out []byte) {
	m := r.m
	want, f, newFlow := r.predict(g, got, out)
	if r.err != nil {
		return
	}
	if got != want {
		r.failf("verdict %v, model wants %v", got, want)
		return
	}
	m.verdicts[got]++
	m.cov.Verdicts[got]++
	if got != VerdictForward && got != VerdictHairpin {
		return
	}
	m.packets[g.dir]++
	if newFlow != nil {
		m.insert(newFlow, g, r.now)
		f = newFlow
	} else if g.kind != gError {
		m.touch(f, g, g.dir == DirOut, r.now)
	}
	exp := expectBytes(g, in, f)
	if msg := compareMasked(g, exp, out); msg != "" {
		r.failf("rewrite of %s: %s\n got  %x\n want %x", describe(g), msg, out, exp)
		return
	}
	if msg := r.checksumsOK(g, f, out); msg != "" {
		r.failf("checksums of %s: %s (%x)", describe(g), msg, out)
	}
}

// predict returns the verdict the model wants for g (given the
// translator's, where the model accepts a choice), the flow translating it
// and a flow it creates.
func (r *mRun) predict(g *gpkt, got Verdict, out []byte) (Verdict, *mFlow, *mFlow) {
	m, s := r.m, &r.m.spec
	if g.kind != gFragLater && (g.dst == mInside || g.dst == mOutside) {
		return VerdictLocal, nil, nil
	}
	if g.ttl <= 1 {
		return DropTTLExceeded, nil, nil
	}
	switch g.kind {
	case gError:
		return r.predictError(g, got)
	case gFragLater:
		var f *mFlow
		if g.dir == DirOut {
			f = r.liveOut(OutKey{Priv: g.src, Remote: g.dst, PrivPort: g.fragSport, RemotePort: g.fragDport, Proto: g.proto})
		} else {
			f = r.liveIn(InKey{Pub: g.dst, Remote: g.src, PubPort: g.fragDport, RemotePort: g.fragSport, Proto: g.proto})
		}
		if f == nil || r.m.spec.isPublic(f.key.Remote) {
			// A hairpin flow's later fragments are dropped: the
			// runtime doesn't take them through the inbound side.
			return DropFragment, nil, nil
		}
		return VerdictForward, f, nil
	}
	if g.dir == DirIn {
		return r.predictIn(g, got)
	}
	rport := g.dport
	if g.echo() {
		rport = 0
	}
	key := OutKey{Priv: g.src, Remote: g.dst, PrivPort: g.sport, RemotePort: rport, Proto: g.proto}
	if f := r.liveOut(key); f != nil {
		if _, ok := f.seqCheck(g, true); !ok {
			return DropTCPInvalidRST, nil, nil
		}
		return r.mHairpinOr(f, VerdictForward), f, nil
	}
	switch {
	case g.echo() && g.icmpType == ICMPEchoReply:
		return DropNoFlow, nil, nil
	case g.proto == ProtoTCP && g.flags&TCPFlagRST != 0:
		return DropNoFlow, nil, nil
	case s.martian(g.dst):
		// Before the deny rules: like a malformed packet, a martian
		// destination is refused before [S1] classifies anything
		// (issue 14 item 1: "drop them before translation").
		return DropMartian, nil, nil
	case s.denied(g.dst, g.proto, g.dport):
		return DropDenied, nil, nil
	}
	nf := &mFlow{key: key, kind: s.classify(g.src)}
	var blk portalloc.Block
	switch nf.kind {
	case ScenarioNone:
		return DropNoScenario, nil, nil
	case ScenarioInstance:
		if v, ok := r.limited(g.src, false, got); ok {
			return v, nil, nil
		}
		nf.pub, nf.pubPort = s.instancePublic(g.src), g.sport
		return r.mHairpinOr(nf, VerdictForward), nil, nf
	case ScenarioPool:
		blk = m.block(g.src)
		if blk.Size() != s.blockSize() || blk.Public != mFE1 {
			r.failf("member %s has block %v, [S3] wants %d ports on fe1", AddrFrom(g.src), blk, s.blockSize())
			return got, nil, nil
		}
	case ScenarioDefault:
		d := m.pol.DefaultSNAT()
		nf.alloc = d
		b, ok := d.Lookup(g.src)
		if !ok {
			if got == DropPortExhausted {
				return got, nil, nil // no block left (the model doesn't count them)
			}
			r.failf("default-SNAT source %s has no block after a new flow", AddrFrom(g.src))
			return got, nil, nil
		}
		if ob, seen := m.defBlocks[g.src]; seen && ob != b {
			r.failf("default-SNAT source %s moved from block %v to %v while holding it", AddrFrom(g.src), ob, b)
			return got, nil, nil
		}
		m.defBlocks[g.src] = b // assigned by this packet if not before
		blk = b
	}
	// [S2][S4]: a port of the block free towards the destination.
	// Flows a reload left pending or reclaimed count until the
	// translator meets them (or its sweep does), so they may, but need
	// not, make the member run out.
	uk := nf.usageKey()
	sure, all := 0, m.usage(uk, true)
	freeSure, freeAll := blk.Size(), blk.Size()
	for _, f := range m.flows {
		if f.kind != ScenarioInstance && f.usageKey() == uk && !f.pending && !f.draining {
			sure++
		}
		if f.pub == blk.Public && blk.Contains(f.pubPort) && f.key.Remote == g.dst && f.key.RemotePort == rport && f.key.Proto == g.proto {
			freeAll--
			if !f.pending {
				freeSure--
			}
		}
	}
	if sure >= blk.Size() || freeSure == 0 {
		return DropPortExhausted, nil, nil
	}
	if got == DropPortExhausted && (all >= blk.Size() || freeAll == 0) {
		return got, nil, nil
	}
	// Issue 19: an endpoint-independent mapping's port, or a port no
	// mapping holds for a new one.
	var mport uint16
	var mapped bool
	if s.eimFor(nf.kind, g.proto) {
		nf.eim = true
		mpub, mp, msure, mheld := m.mappingOf(g.proto, g.src, g.sport)
		if mheld {
			pm, _ := m.pol.Classify(g.src)
			grace := pm.Grace
			if nf.kind == ScenarioDefault {
				grace = portalloc.Block{}
			}
			valid := mpub == blk.Public && (blk.Contains(mp) || grace.Public == mpub && grace.Contains(mp))
			if msure && !valid {
				return DropPortExhausted, nil, nil
			}
			taken := m.byIn(InKey{Pub: mpub, Remote: g.dst, PubPort: mp, RemotePort: rport, Proto: g.proto}) != nil ||
				m.zombieIn(InKey{Pub: mpub, Remote: g.dst, PubPort: mp, RemotePort: rport, Proto: g.proto}) != nil
			if got == DropPortExhausted && (!msure || !valid || taken) {
				return got, nil, nil
			}
			mport, mapped = mp, msure
			m.cov.EIMJoined += uint64(b2i(msure && got == VerdictForward))
		} else {
			least, most := m.eimFree(blk, g.proto, g.dst, rport)
			if most == 0 {
				return DropPortExhausted, nil, nil
			}
			if got == DropPortExhausted && least == 0 {
				return got, nil, nil
			}
		}
	}
	// The limits, once the port is chosen.
	if v, ok := r.limited(g.src, false, got); ok {
		return v, nil, nil
	}
	if got != VerdictForward && got != VerdictHairpin {
		return VerdictForward, nil, nil
	}
	pub, port := IPv4(out).Src(), portOf(g, out, true)
	if mapped && port != mport {
		r.failf("new flow %v got %s:%d, its endpoint-independent mapping is on port %d", key, AddrFrom(pub), port, mport)
		return got, nil, nil
	}
	if pub != blk.Public || !blk.Contains(port) && !(mapped && port == mport) {
		r.failf("new flow %v got %s:%d, outside its block %v [S2]", key, AddrFrom(pub), port, blk)
		return got, nil, nil
	}
	if nf.eim && !mapped {
		if of, sure, _, _, _ := m.mappingAt(g.proto, pub, port, 0); sure && (of.key.Priv != g.src || of.key.PrivPort != g.sport) {
			r.failf("new flow %v got %s:%d, the mapping of %s:%d", key, AddrFrom(pub), port, AddrFrom(of.key.Priv), of.key.PrivPort)
			return got, nil, nil
		}
	}
	// The port probe re-validated a pending flow holding the port.
	if o := m.byIn(InKey{Pub: pub, Remote: g.dst, PubPort: port, RemotePort: rport, Proto: g.proto}); o != nil && o.pending {
		r.live(o, nil)
	}
	if m.portTaken(pub, port, g.dst, rport, g.proto) {
		r.failf("new flow %v got %s:%d, already used towards %s:%d [S2]", key, AddrFrom(pub), port, AddrFrom(g.dst), rport)
		return got, nil, nil
	}
	nf.pub, nf.pubPort = pub, port
	if z := m.zombieIn(nf.inKey()); z != nil {
		delete(m.zombies, z.key) // the port probe re-validated it
	}
	return r.mHairpinOr(nf, VerdictForward), nil, nf
}

// mHairpinOr returns VerdictHairpin for a packet of flow f going out to
// one of natgw's public addresses (issue 14 item 10, RFC 4787 REQ-9:
// translated outbound, then inbound inside natgw), else v. Whether the
// remote is public follows the running policy: a reload that adds or
// removes an instance's address changes it for the flows it keeps.
func (r *mRun) mHairpinOr(f *mFlow, v Verdict) Verdict {
	if r.m.spec.isPublic(f.key.Remote) {
		return VerdictHairpin
	}
	return v
}

// predictIn is predict for TCP, UDP and echo from the outside [S6].
func (r *mRun) predictIn(g *gpkt, got Verdict) (Verdict, *mFlow, *mFlow) {
	s := &r.m.spec
	rport, pport := g.sport, g.dport
	if g.echo() {
		rport = 0
	}
	if g.echo() && g.icmpType == ICMPEchoRequest {
		priv, ok := s.instanceByPublic(g.dst)
		if !ok || !s.allowsInbound(priv, ProtoICMP, 0) {
			if s.isPublic(g.dst) {
				return VerdictLocal, nil, nil
			}
			return DropNoFlow, nil, nil
		}
	}
	k := InKey{Pub: g.dst, Remote: g.src, PubPort: pport, RemotePort: rport, Proto: g.proto}
	if f := r.liveIn(k); f != nil {
		if _, ok := f.seqCheck(g, false); !ok {
			return DropTCPInvalidRST, nil, nil
		}
		return VerdictForward, f, nil
	}
	if s.eim && !g.echo() {
		if v, nf, ok := r.predictEIMIn(g, got, rport, pport); ok {
			return v, nil, nf
		}
	}
	priv, ok := s.instanceByPublic(g.dst)
	if !ok || !s.allowsInbound(priv, g.proto, pport) {
		return DropNoFlow, nil, nil
	}
	if g.proto == ProtoTCP && g.flags&(TCPFlagSYN|TCPFlagACK|TCPFlagRST) != TCPFlagSYN {
		return DropNoFlow, nil, nil
	}
	if g.echo() && g.icmpType != ICMPEchoRequest {
		return DropNoFlow, nil, nil
	}
	if s.martian(g.src) {
		// The flow's remote would be a martian, and the instance's
		// answers (established, never checked) would go to it.
		return DropMartian, nil, nil
	}
	if v, ok := r.limited(g.src, true, got); ok {
		return v, nil, nil
	}
	nf := &mFlow{key: OutKey{Priv: priv, Remote: g.src, PrivPort: pport, RemotePort: rport, Proto: g.proto},
		pub: g.dst, pubPort: pport, inbound: true, kind: ScenarioInstance}
	return VerdictForward, nil, nf
}

// predictEIMIn is predictIn for a packet from the outside that matched no
// flow, to the public endpoint of an endpoint-independent mapping: its
// scope's filtering decides whether it opens a flow (issue 19). ok is
// false when no mapping holds the endpoint.
func (r *mRun) predictEIMIn(g *gpkt, got Verdict, rport, pport uint16) (Verdict, *mFlow, bool) {
	m, s := r.m, &r.m.spec
	of, sure, held, remoteSure, remoteAny := m.mappingAt(g.proto, g.dst, pport, g.src)
	if !held {
		return 0, nil, false
	}
	kind := s.classify(of.key.Priv)
	if kind != ScenarioPool && kind != ScenarioDefault {
		return DropNoFlow, nil, true
	}
	filt := s.filt[0]
	if kind == ScenarioDefault {
		filt = s.filt[1]
	}
	passSure, passAny := true, true
	switch filt {
	case FilteringAddressPortDependent:
		passSure, passAny = false, false
	case FilteringAddressDependent:
		passSure, passAny = remoteSure, remoteAny
	}
	if !passAny {
		m.cov.EIMFiltered++
		return DropNoFlow, nil, true
	}
	if g.proto == ProtoTCP && g.flags&(TCPFlagSYN|TCPFlagACK|TCPFlagRST) != TCPFlagSYN {
		return DropNoFlow, nil, true
	}
	certain := sure && passSure
	if !certain && got == DropNoFlow {
		return got, nil, true // the mapping or the address may be gone already
	}
	if s.martian(g.src) {
		return DropMartian, nil, true
	}
	var blk, grace portalloc.Block
	nf := &mFlow{key: OutKey{Priv: of.key.Priv, Remote: g.src, PrivPort: of.key.PrivPort, RemotePort: rport, Proto: g.proto},
		pub: g.dst, pubPort: pport, inbound: true, kind: kind, eim: true}
	if kind == ScenarioDefault {
		d := m.pol.DefaultSNAT()
		nf.alloc = d
		b, ok := d.Lookup(of.key.Priv)
		if !ok {
			return DropNoFlow, nil, true
		}
		blk = b
	} else {
		pm, _ := m.pol.Classify(of.key.Priv)
		blk, grace = pm.Block, pm.Grace
	}
	if blk.Public != g.dst || !(blk.Contains(pport) || grace.Public == g.dst && grace.Contains(pport)) {
		return DropNoFlow, nil, true
	}
	if v, ok := r.limited(g.src, true, got); ok {
		return v, nil, true
	}
	m.cov.EIMOpened++
	return VerdictForward, nf, true
}

// predictError is [S8] for ICMP errors: matched through the quote.
func (r *mRun) predictError(g *gpkt, got Verdict) (Verdict, *mFlow, *mFlow) {
	qr := g.qDport
	if g.qProto == ProtoICMP {
		qr = 0
	}
	if g.corrupt && got == DropMalformed {
		// RFC 5508 REQ-3: a corrupted error is dropped, never made valid
		// (checked before the quote is looked up, or after).
		return got, nil, nil
	}
	var f *mFlow
	if g.dir == DirIn {
		if g.dst != g.qSrc {
			return DropNoFlow, nil, nil
		}
		qs := g.qSport
		f = r.liveIn(InKey{Pub: g.qSrc, Remote: g.qDst, PubPort: qs, RemotePort: qr, Proto: g.qProto})
	} else {
		if g.src != g.qDst {
			return DropUnsupported, nil, nil
		}
		// Issue 14 item 5: only back to the quoted packet's source (the
		// flow's remote), else no_flow; then the deny rules for ICMP to
		// that destination, before the flow is looked up ([S1] deny
		// first: a denied remote gets nothing, flow or not). A martian
		// destination needs no rule of its own: no live flow has one.
		if g.dst != g.qSrc {
			return DropNoFlow, nil, nil
		}
		if r.m.spec.denied(g.dst, ProtoICMP, 0) {
			return DropDenied, nil, nil
		}
		// An error about a hairpinned packet (its flow's remote is one
		// of natgw's public addresses) is forwarded like any other, to
		// the outside, not hairpinned: that is what the translator does
		// today (icmp.go has no hairpin case), and the model checks it
		// as such; whether it should reach the inside host instead is
		// left to the lead (RFC 4787 REQ-9 names no ICMP case).
		qs := g.qSport
		if g.qProto == ProtoICMP {
			qs = 0
		}
		f = r.liveOut(OutKey{Priv: g.qDst, Remote: g.qSrc, PrivPort: g.qDport, RemotePort: qs, Proto: g.qProto})
	}
	if g.corrupt && (f != nil || got != DropNoFlow) {
		return DropMalformed, nil, nil
	}
	if f == nil {
		return DropNoFlow, nil, nil
	}
	return VerdictForward, f, nil
}

// portOf returns the public port (or echo id) of a translated packet: its
// source port going out.
func portOf(g *gpkt, out []byte, src bool) uint16 {
	l4 := IPv4(out).Payload()
	if g.echo() {
		return binary.BigEndian.Uint16(l4[4:6])
	}
	if src {
		return binary.BigEndian.Uint16(l4[0:2])
	}
	return binary.BigEndian.Uint16(l4[2:4])
}

// expectBytes returns the packet as the translation of flow f must leave
// it, checksum fields aside.
func expectBytes(g *gpkt, in []byte, f *mFlow) []byte {
	b := slices.Clone(in)
	ip := IPv4(b)
	ip.SetTTL(ip.TTL() - 1)
	out := g.dir == DirOut
	if out {
		ip.SetSrc(f.pub)
	} else {
		ip.SetDst(f.key.Priv)
	}
	if g.kind == gFragLater {
		return b
	}
	l4 := ip.Payload()
	if g.kind == gError {
		emb := IPv4(l4[ICMPHeaderLen:])
		el4 := emb[IPv4MinLen:]
		if out {
			binary.BigEndian.PutUint32(emb[16:], f.pub)
		} else {
			binary.BigEndian.PutUint32(emb[12:], f.key.Priv)
		}
		switch {
		case g.qProto == ProtoICMP && out:
			binary.BigEndian.PutUint16(el4[4:], f.pubPort)
		case g.qProto == ProtoICMP:
			binary.BigEndian.PutUint16(el4[4:], f.key.PrivPort)
		case out:
			binary.BigEndian.PutUint16(el4[2:], f.pubPort)
		default:
			binary.BigEndian.PutUint16(el4[0:], f.key.PrivPort)
		}
		return b
	}
	port := f.pubPort
	if !out {
		port = f.key.PrivPort
	}
	switch {
	case g.echo():
		binary.BigEndian.PutUint16(l4[4:], port)
	case out:
		binary.BigEndian.PutUint16(l4[0:], port)
	default:
		binary.BigEndian.PutUint16(l4[2:], port)
	}
	return b
}

// checksumFields lists the offsets of a packet's checksum fields.
func checksumFields(g *gpkt, b []byte) []int {
	offs := []int{10}
	if g.kind == gFragLater {
		return offs
	}
	l4 := IPv4MinLen
	switch {
	case g.kind == gError:
		offs = append(offs, l4+2, l4+ICMPHeaderLen+10)
		el4 := l4 + ICMPHeaderLen + IPv4MinLen
		switch g.qProto {
		case ProtoTCP:
			if len(b) >= el4+18 {
				offs = append(offs, el4+16)
			}
		case ProtoUDP:
			offs = append(offs, el4+6)
		default:
			offs = append(offs, el4+2)
		}
	case g.proto == ProtoTCP:
		offs = append(offs, l4+16)
	case g.proto == ProtoUDP:
		offs = append(offs, l4+6)
	default:
		offs = append(offs, l4+2)
	}
	return offs
}

// compareMasked compares two packets but for their checksum fields.
func compareMasked(g *gpkt, want, got []byte) string {
	if len(want) != len(got) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	w, o := slices.Clone(want), slices.Clone(got)
	for _, off := range checksumFields(g, want) {
		w[off], w[off+1], o[off], o[off+1] = 0, 0, 0, 0
	}
	for i := range w {
		if w[i] != o[i] {
			return fmt.Sprintf("byte %d is %#x, want %#x", i, o[i], w[i])
		}
	}
	return ""
}

// checksumsOK verifies a translated packet's checksums from scratch with
// the naive oracle; where a checksum covers bytes the packet doesn't
// carry (a first fragment's datagram, an error's quoted datagram) it is
// compared with the checksum of the whole translated datagram built anew.
func (r *mRun) checksumsOK(g *gpkt, f *mFlow, out []byte) string {
	ip := IPv4(out)
	if naiveChecksum(out[:IPv4MinLen], 0) != 0 {
		return "IPv4 header checksum"
	}
	switch g.kind {
	case gFragLater:
		return ""
	case gFragFirst:
		whole := make([]byte, 256)
		n := BuildUDP(whole, ip.Src(), ip.Dst(), binary.BigEndian.Uint16(out[20:]), binary.BigEndian.Uint16(out[22:]), 64, g.payload)
		want := binary.BigEndian.Uint16(whole[IPv4MinLen+6 : n])
		if g.zeroUDP {
			want = 0
		}
		if got := binary.BigEndian.Uint16(out[IPv4MinLen+6:]); got != want {
			return fmt.Sprintf("first fragment's UDP checksum %#x, the datagram's is %#x", got, want)
		}
		return ""
	case gError:
		if p := checksumProblems(ip); len(p) > 0 {
			return strings.Join(p, ", ")
		}
		// The quote as it must read after translation, built whole.
		qs, qd, qsp, qdp := g.qSrc, g.qDst, g.qSport, g.qDport
		if g.dir == DirIn {
			qs, qsp = f.key.Priv, f.key.PrivPort
		} else {
			qd, qdp = f.pub, f.pubPort
		}
		if g.qProto == ProtoICMP { // the echo id, on both sides
			qsp = qdp
			if g.dir == DirIn {
				qsp, qdp = f.key.PrivPort, f.key.PrivPort
			}
		}
		q := make([]byte, 256)
		qn := mBuild(q, g.qProto, qs, qd, qsp, qdp, TCPFlagACK, ICMPEchoRequest, 60, []byte("quoted payload"))
		off := map[uint8]int{ProtoTCP: 16, ProtoUDP: 6, ProtoICMP: 2}[g.qProto]
		el4 := ip.Payload()[ICMPHeaderLen+IPv4MinLen:]
		if len(el4) < off+2 {
			return ""
		}
		want := binary.BigEndian.Uint16(q[IPv4MinLen+off : qn])
		got := binary.BigEndian.Uint16(el4[off:])
		if got != want && !(g.qProto != ProtoUDP && got^want == 0xFFFF && (got == 0 || want == 0)) {
			return fmt.Sprintf("quoted transport checksum %#x, want %#x", got, want)
		}
		return ""
	}
	if p := checksumProblems(ip); len(p) > 0 {
		return strings.Join(p, ", ")
	}
	return ""
}

// describe returns a one-line description of a generated packet.
func describe(g *gpkt) string {
	kind := [...]string{"packet", "icmp-error", "first-fragment", "later-fragment"}[g.kind]
	dir := [2]string{"out", "in"}[g.dir]
	s := fmt.Sprintf("%s %s %s %s:%d > %s:%d", dir, kind, ProtoName(g.proto), AddrFrom(g.src), g.sport, AddrFrom(g.dst), g.dport)
	if g.proto == ProtoTCP {
		s += fmt.Sprintf(" flags=%#x", g.flags)
	}
	if g.proto == ProtoICMP && g.kind != gError {
		s += fmt.Sprintf(" type=%d", g.icmpType)
	}
	if g.kind == gError {
		s += fmt.Sprintf(" quoting %s %s:%d > %s:%d corrupt=%v", ProtoName(g.qProto), AddrFrom(g.qSrc), g.qSport, AddrFrom(g.qDst), g.qDport, g.corrupt)
	}
	if g.ttl <= 1 {
		s += " ttl=1"
	}
	return s
}

// sortedFlows returns the model's live, zombie and recently dead flows
// in a fixed order, so a seed always generates the same packets. A flow
// that left and one that took its place may tie on every field compared
// (they differ in state): the stable sort keeps them in set order (live,
// zombie, dead), not in the maps' random order.
func (m *model) sortedFlows() []*mFlow {
	fs := make([]*mFlow, 0, len(m.flows)+len(m.zombies)+len(m.dead))
	for _, set := range []map[OutKey]*mFlow{m.flows, m.zombies, m.dead} {
		for _, f := range set {
			fs = append(fs, f)
		}
	}
	slices.SortStableFunc(fs, func(a, b *mFlow) int {
		ka, kb := a.key, b.key
		for _, d := range []int{int(ka.Priv) - int(kb.Priv), int(ka.Remote) - int(kb.Remote),
			int(ka.PrivPort) - int(kb.PrivPort), int(ka.RemotePort) - int(kb.RemotePort), int(ka.Proto) - int(kb.Proto)} {
			if d != 0 {
				return d
			}
		}
		if d := int(a.pubPort) - int(b.pubPort); d != 0 {
			return d
		}
		if d := int(a.pub) - int(b.pub); d != 0 {
			return d
		}
		return b2i(a.inbound) - b2i(b.inbound)
	})
	return fs
}

// pick returns a random element of s.
func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

var outFlags = []uint8{TCPFlagSYN, TCPFlagSYN, TCPFlagACK, TCPFlagACK | TCPFlagPSH, TCPFlagFIN | TCPFlagACK, TCPFlagRST, TCPFlagSYN | TCPFlagACK}
var inFlags = []uint8{TCPFlagSYN | TCPFlagACK, TCPFlagACK, TCPFlagACK | TCPFlagPSH, TCPFlagFIN | TCPFlagACK, TCPFlagRST, TCPFlagSYN}

// payload returns random data for a packet.
func (r *mRun) payload() []byte {
	p := make([]byte, 24+r.rng.IntN(24))
	for i := range p {
		p[i] = byte(r.rng.Uint32())
	}
	return p
}

// genOut generates a packet from the inside.
func (r *mRun) genOut() *gpkt {
	rng := r.rng
	g := &gpkt{dir: DirOut, ttl: 64, payload: r.payload(), wscale: -1}
	fs := r.m.sortedFlows()
	var of *mFlow // the flow g belongs to, when picked from one
	x := rng.IntN(100)
	switch {
	case x < 45 && len(fs) > 0:
		f := pick(rng, fs)
		of = f
		g.proto, g.src, g.dst, g.sport, g.dport = f.key.Proto, f.key.Priv, f.key.Remote, f.key.PrivPort, f.key.RemotePort
		g.icmpType = ICMPEchoRequest
		if f.inbound {
			g.icmpType = ICMPEchoReply
		}
	case x < 55 && len(fs) > 0:
		// An error from a private host about a packet it received.
		f := pick(rng, fs)
		g.kind, g.proto, g.icmpType = gError, ProtoICMP, ICMPDestUnreachable
		g.src, g.dst = f.key.Priv, f.key.Remote
		g.qProto, g.qSrc, g.qDst, g.qSport, g.qDport = f.key.Proto, f.key.Remote, f.key.Priv, f.key.RemotePort, f.key.PrivPort
		if f.key.Proto == ProtoICMP {
			g.qSport = f.key.PrivPort
		}
		switch y := rng.IntN(16); {
		case y < 2:
			g.src = pick(rng, mHosts) // from a router behind natgw
		case y < 4:
			// Addressed elsewhere than the quoted flow's remote: a
			// remote of the model, a martian, or one next to a martian.
			g.dst = pick(rng, [][]uint32{mRemotes, mMartians, mNearMartians}[rng.IntN(3)])
		}
		g.build()
		return g
	default:
		g.src, g.dst = pick(rng, mHosts), pick(rng, mRemotes)
		g.proto = pick(rng, []uint8{ProtoTCP, ProtoTCP, ProtoUDP, ProtoUDP, ProtoICMP})
		g.sport, g.dport = uint16(1000+rng.IntN(r.spread)), pick(rng, mRemotePorts)
		if rng.IntN(3) == 0 {
			// A busy destination, to run small blocks out of ports [S4].
			g.src = pick(rng, []uint32{mHosts[0], mHosts[5]})
			g.dst, g.proto, g.dport = mRemotes[0], ProtoUDP, 53
		}
		g.icmpType = ICMPEchoRequest
		if rng.IntN(20) == 0 {
			g.icmpType = ICMPEchoReply
		}
		switch rng.IntN(16) {
		case 0:
			g.dst = pick(rng, mMartians)
		case 1:
			g.dst = pick(rng, mNearMartians)
		case 2:
			// Hairpinning: to an instance's public address (its
			// inbound ports among others) ...
			g.dst = pick(rng, mInstPub[:])
			g.dport = pick(rng, []uint16{22, 8000, 8080, 5353, 9000})
		case 3:
			// ... or to the public endpoint of another host's flow.
			var pubs []*mFlow
			for _, f := range fs {
				if !f.inbound && f.key.Priv != g.src {
					pubs = append(pubs, f)
				}
			}
			if len(pubs) > 0 {
				f := pick(rng, pubs)
				g.dst, g.dport, g.proto = f.pub, f.pubPort, f.key.Proto
			}
		}
	}
	if g.proto == ProtoICMP {
		g.dport = 0
	}
	g.flags = pick(rng, outFlags)
	r.tcpNumbers(g, of)
	switch y := rng.IntN(100); {
	case y < 2:
		g.ttl = 1
	case y < 3:
		g.dst = mInside
	case y < 6 && g.proto == ProtoUDP:
		g.zeroUDP = true
	case y < 14 && g.proto == ProtoUDP:
		r.fragment(g)
	}
	g.build()
	return g
}

// tcpNumbers chooses a TCP segment's sequence and acknowledgement
// numbers, window and window scale. For a segment of flow f they are often
// what the receiver expects (exactly, inside its window, just outside it)
// and what the opener's SYN asks to be acknowledged, so exact, challenged
// and blind RSTs and FINs all occur; otherwise they are random.
func (r *mRun) tcpNumbers(g *gpkt, f *mFlow) {
	rng := r.rng
	g.seq, g.ack = rng.Uint32(), rng.Uint32()
	g.win = pick(rng, []uint16{0, 1, 512, 8192, 65535})
	if g.flags&TCPFlagSYN != 0 && rng.IntN(3) != 0 {
		g.wscale = int8(pick(rng, []int{0, 2, 7, 14, 15}))
	}
	if f == nil || g.proto != ProtoTCP {
		return
	}
	out := g.dir == DirOut
	expect, win, sender := f.ackRemote, mWindow(f.winRemote, f.wsRemote), f.ackPriv
	if !out {
		expect, win, sender = f.ackPriv, mWindow(f.winPriv, f.wsPriv), f.ackRemote
	}
	switch rng.IntN(6) {
	case 0, 1:
		g.seq = expect
	case 2:
		g.seq = expect + uint32(rng.Int64N(int64(max(win, 1))))
	case 3:
		g.seq = expect + max(win, 1) + uint32(rng.IntN(3))
	case 4:
		g.seq = expect - 1 - uint32(rng.IntN(3))
	}
	switch rng.IntN(4) {
	case 0, 1:
		g.ack = sender
	case 2:
		g.ack = sender + uint32(rng.IntN(2))
	}
}

// fragment makes g the first fragment of its datagram and queues the rest
// for the fragment path.
func (r *mRun) fragment(g *gpkt) {
	g.kind = gFragFirst
	later := *g
	later.kind, later.fragSport, later.fragDport = gFragLater, g.sport, g.dport
	later.build()
	r.frags = append(r.frags, &later)
}

// genIn generates a packet from the outside.
func (r *mRun) genIn() *gpkt {
	rng := r.rng
	g := &gpkt{dir: DirIn, ttl: 64, payload: r.payload(), wscale: -1}
	// Not hairpin flows: a packet from the outside with natgw's own
	// address as its source is the runtime's to refuse, not the
	// translator's; their inbound packets come from burst.
	fs := slices.DeleteFunc(r.m.sortedFlows(), func(f *mFlow) bool { return r.m.spec.isPublic(f.key.Remote) })
	var of *mFlow // the flow g belongs to, when picked from one
	x := rng.IntN(100)
	if r.m.spec.eim && rng.IntN(3) == 0 {
		// Issue 19: to the public endpoint of a mapping, from a remote
		// endpoint it may or may not have a flow with.
		var mapped []*mFlow
		for _, f := range fs {
			if f.eim {
				mapped = append(mapped, f)
			}
		}
		if len(mapped) > 0 {
			f := pick(rng, mapped)
			g.proto, g.dst, g.dport = f.key.Proto, f.pub, f.pubPort
			g.src, g.sport = pick(rng, mRemotes), pick(rng, mRemotePorts)
			if rng.IntN(3) == 0 {
				g.src = f.key.Remote
			}
			x = -1 // built below
		}
	}
	switch {
	case x < 0:
	case x < 55 && len(fs) > 0:
		f := pick(rng, fs)
		of = f
		g.proto, g.src, g.dst, g.sport, g.dport = f.key.Proto, f.key.Remote, f.pub, f.key.RemotePort, f.pubPort
		g.icmpType = ICMPEchoReply
		if f.inbound {
			g.icmpType = ICMPEchoRequest
		}
	case x < 72 && len(fs) > 0:
		// An error from the path about a packet natgw sent.
		f := pick(rng, fs)
		g.kind, g.proto = gError, ProtoICMP
		g.icmpType = pick(rng, []uint8{ICMPDestUnreachable, ICMPTimeExceeded})
		g.src, g.dst = pick(rng, []uint32{mRouter, f.key.Remote}), f.pub
		g.qProto, g.qSrc, g.qDst, g.qSport, g.qDport = f.key.Proto, f.pub, f.key.Remote, f.pubPort, f.key.RemotePort
		if f.key.Proto == ProtoICMP {
			g.qDport = f.pubPort
		}
		if rng.IntN(10) == 0 {
			g.dst = mFE1 // not addressed to the quoted source
		}
		g.corrupt = rng.IntN(6) == 0
		g.ttl = 64
		g.build()
		return g
	case x < 84:
		// Unsolicited, to an instance.
		g.src, g.dst = pick(rng, mRemotes), pick(rng, mInstPub[:])
		g.proto = pick(rng, []uint8{ProtoTCP, ProtoUDP, ProtoICMP})
		g.sport, g.dport = uint16(30000+rng.IntN(4)), pick(rng, []uint16{22, 8000, 8080, 9000})
		g.icmpType = ICMPEchoRequest
		switch rng.IntN(10) {
		case 0:
			g.src = pick(rng, mMartians) // spoofed
		case 1:
			g.src = pick(rng, mNearMartians)
		}
	default:
		g.src = pick(rng, mRemotes)
		g.dst = pick(rng, []uint32{mFE1, mFEDef[0], mFEDef[1], mOutside})
		g.proto = pick(rng, []uint8{ProtoTCP, ProtoUDP, ProtoICMP})
		g.sport, g.dport = pick(rng, mRemotePorts), uint16(1024+rng.IntN(2048))
		g.icmpType = pick(rng, []uint8{ICMPEchoRequest, ICMPEchoReply})
	}
	if g.proto == ProtoICMP {
		g.sport = 0
	}
	g.flags = pick(rng, inFlags)
	r.tcpNumbers(g, of)
	switch y := rng.IntN(100); {
	case y < 2:
		g.ttl = 1
	case y < 10 && g.proto == ProtoUDP:
		r.fragment(g)
	}
	g.build()
	return g
}

// burst sends n generated packets through the translator's burst path (or
// one packet through the one-packet path) and checks each.
func (r *mRun) burst(dir, n int, single bool) {
	gs := make([]*gpkt, n)
	pkts := make([][]byte, n)
	ins := make([][]byte, n)
	for i := range gs {
		if dir == DirOut {
			gs[i] = r.genOut()
		} else {
			gs[i] = r.genIn()
		}
		pkts[i] = slices.Clone(gs[i].b)
		ins[i] = gs[i].b
	}
	r.m.cov.Bursts++
	vs := make([]Verdict, n)
	switch {
	case single && dir == DirOut:
		vs[0] = r.t.Outbound(pkts[0], r.now)
	case single:
		vs[0] = r.t.Inbound(pkts[0], r.now)
	case dir == DirOut:
		r.t.OutboundBurst(pkts, vs, r.now)
	default:
		r.t.InboundBurst(pkts, vs, r.now)
	}
	var hairpins []*gpkt
	for i, g := range gs {
		r.logf("%s #%d/%d: %s -> %v", [2]string{"burst", "single"}[b2i(single)], i, n, describe(g), vs[i])
		r.check(g, ins[i], vs[i], pkts[i])
		if r.err != nil {
			return
		}
		if vs[i] == VerdictHairpin {
			hairpins = append(hairpins, hairpinned(g, pkts[i]))
		}
	}
	r.reconcile()
	if len(hairpins) > 0 && r.err == nil {
		r.inbound(hairpins, single)
	}
}

// hairpinned describes the packet a hairpin verdict leaves: g translated
// outbound (out), which the runtime now gives the inbound side as if it
// came from the outside.
func hairpinned(g *gpkt, out []byte) *gpkt {
	h := *g
	h.dir, h.ttl, h.b = DirIn, g.ttl-1, slices.Clone(out)
	h.src = IPv4(out).Src()
	if g.echo() {
		h.sport, h.dport = 0, portOf(g, out, true)
	} else {
		h.sport = portOf(g, out, true)
	}
	return &h
}

// inbound sends hairpinned packets through the inbound side (a burst, or
// one by one) and checks each.
func (r *mRun) inbound(gs []*gpkt, single bool) {
	pkts := make([][]byte, len(gs))
	for i, g := range gs {
		pkts[i] = slices.Clone(g.b)
	}
	vs := make([]Verdict, len(gs))
	if single {
		for i := range pkts {
			vs[i] = r.t.Inbound(pkts[i], r.now)
		}
	} else {
		r.t.InboundBurst(pkts, vs, r.now)
	}
	for i, g := range gs {
		r.logf("hairpin #%d/%d: %s -> %v", i, len(gs), describe(g), vs[i])
		r.check(g, g.b, vs[i], pkts[i])
		if r.err != nil {
			return
		}
	}
	r.reconcile()
}

// b2i converts a bool to 0 or 1.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// laterFragments sends some of the queued later fragments through the
// fragment path, with the ports the runtime learnt from the first.
func (r *mRun) laterFragments() {
	n := r.rng.IntN(len(r.frags) + 1)
	for _, g := range r.frags[:n] {
		r.m.cov.Fragments++
		b := slices.Clone(g.b)
		var v Verdict
		if g.dir == DirOut {
			v = r.t.OutboundFragment(b, g.fragSport, g.fragDport, r.now)
		} else {
			v = r.t.InboundFragment(b, g.fragSport, g.fragDport, r.now)
		}
		r.logf("%s -> %v", describe(g), v)
		r.check(g, g.b, v, b)
		if r.err != nil {
			return
		}
	}
	r.frags = r.frags[n:]
	r.reconcile()
}

// expire and sweep, as the worker does between bursts.
func (r *mRun) housekeeping() {
	for {
		budget := 1 + r.rng.IntN(300)
		_, more := r.t.Expire(r.now, budget)
		if !more {
			break
		}
	}
	r.m.expire(r.now)
	r.logf("expire")
	r.reconcile()
	if r.err != nil {
		return
	}
	for !r.t.ExpireDrained(r.now, 1+r.rng.IntN(300)) {
	}
	r.expireDrained()
	r.logf("expire drained")
	r.reconcile()
	if r.err != nil || !r.sweeping {
		return
	}
	done := r.t.Sweep(1 + r.rng.IntN(2*mCapacity))
	r.sweeping = !done
	if done {
		r.m.cov.Sweeps++
	}
	r.logf("sweep done=%v", done)
	r.reconcile()
	if done {
		gen := r.gen()
		r.t.flows.Range(func(_ uint32, f *Flow) bool {
			if f.Gen != gen {
				r.failf("flow %s:%d > %s:%d (%s) of generation %d survives a finished sweep under generation %d [S7]",
					AddrFrom(f.Priv), f.PrivPort, AddrFrom(f.Remote), f.RemotePort, ProtoName(f.Proto), f.Gen, gen)
				return false
			}
			return true
		})
		if len(r.m.zombies) > 0 {
			r.failf("%d flows reclaimed by the reload still in the table after the sweep", len(r.m.zombies))
		}
	}
}

// reload applies a mutated configuration.
func (r *mRun) reload() {
	s := r.m.spec
	rng := r.rng
	switch rng.IntN(11) {
	case 10: // [reload] reclaim
		s.drain = !s.drain
	case 0, 1: // grow or shrink the pool across the tiers
		s.poolN = pick(rng, []int{3, 4, 50, 51, 52, 100, 101, 102, 120})
	case 2:
		s.ppm = pick(rng, []int{0, 0, 8, 8, 16, 64})
	case 3:
		s.inst2 = !s.inst2
	case 4:
		s.deny[rng.IntN(len(s.deny))] = !s.deny[rng.IntN(len(s.deny))]
	case 5:
		s.defPPM = pick(rng, []int{8, 64, 1024})
	case 6:
		s.defFE = rng.IntN(2)
	case 7:
		s.to[rng.IntN(5)] = pick(rng, []int{5, 10, 30, 60, 240})
	case 8: // an unrelated reload
	case 9: // [limits]: the defaults, a few flows per host, none
		s.hostPct = pick(rng, []int{0, 1, 2, 3, 100})
		s.inPct = pick(rng, []int{0, 1, 2, 100})
	}
	if s.eim && rng.IntN(3) == 0 { // a filtering change keeps every flow
		s.filt[rng.IntN(2)] = FilteringMode(rng.IntN(3))
	}
	p, err := Compile(s.policySpec(), r.t.Policy())
	if err != nil {
		r.failf("compile: %v", err)
		return
	}
	r.t.SetPolicyAt(p, r.now)
	r.m.cov.Reloads++
	r.sweeping = true
	r.m.reload(s, p, r.now)
	r.logf("reload gen %d: pool %d ppm %d inst2 %v defPPM %d defFE %d deny %v timeouts %v limits %d%%/%d%% eim %v %v drain %v",
		p.Gen, s.poolN, s.ppm, s.inst2, s.defPPM, s.defFE, s.deny, s.to, s.hostPct, s.inPct, s.eim, s.filt, s.drain)
	r.checkLayout()
	r.reconcile()
}

// checkLayout checks the compiled blocks against [S3]: the tier's size,
// the port range, no two members sharing a port.
func (r *mRun) checkLayout() {
	s := &r.m.spec
	var blocks []portalloc.Block
	for _, mem := range r.m.pol.Pools[0].Members {
		mp, v := r.m.pol.Classify(U32(mem))
		if v != VerdictForward || mp.Scenario != ScenarioPool {
			r.failf("member %s classified %v", mem, mp.Scenario)
			return
		}
		b := mp.Block
		if b.Size() != s.blockSize() || b.First < 1024 || b.Public != mFE1 {
			r.failf("member %s block %v, want %d ports on fe1 from 1024 [S3]", mem, b, s.blockSize())
			return
		}
		blocks = append(blocks, b)
	}
	slices.SortFunc(blocks, func(a, b portalloc.Block) int { return int(a.First) - int(b.First) })
	for i := 1; i < len(blocks); i++ {
		if blocks[i].First <= blocks[i-1].Last {
			r.failf("blocks %v and %v overlap", blocks[i-1], blocks[i])
			return
		}
	}
}

// reconcile learns which reclaimed flows the translator has let go, and
// compares the whole flow table, the port usage counts and the counters
// with the model.
func (r *mRun) reconcile() {
	if r.err != nil {
		return
	}
	m, gen := r.m, r.gen()
	for k, z := range m.zombies {
		rf := r.realOut(k)
		if rf == nil || rf.Pub != z.pub || rf.PubPort != z.pubPort {
			delete(m.zombies, k)
			m.bury(z)
			continue
		}
		if rf.Gen == gen {
			r.failf("flow %v on %s:%d re-validated under generation %d though the reload reclaimed it [S7]",
				k, AddrFrom(z.pub), z.pubPort, gen)
			return
		}
	}
	for k, f := range m.flows {
		rf := r.realOut(k)
		if f.pending {
			b, ok := m.defBlocks[f.key.Priv]
			keep := ok && b.Public == f.pub && b.Contains(f.pubPort)
			switch {
			case rf == nil || rf.Pub != f.pub || rf.PubPort != f.pubPort:
				if keep {
					r.failf("default-SNAT flow %v on %s:%d reclaimed though its source holds block %v", k, AddrFrom(f.pub), f.pubPort, b)
					return
				}
				delete(m.flows, k) // the translator reclaimed it
			case rf.Gen == gen:
				if !keep {
					r.failf("default-SNAT flow %v on %s:%d kept though its source holds no block with its port (%v %v)", k, AddrFrom(f.pub), f.pubPort, b, ok)
					return
				}
				r.adoptKept(f)
			}
			continue
		}
		switch {
		case rf == nil:
			r.failf("flow %v on %s:%d (state %d, last %d, grace %v) is missing from the translator",
				k, AddrFrom(f.pub), f.pubPort, f.state, f.last, f.grace)
		case rf.Pub != f.pub || rf.PubPort != f.pubPort:
			r.failf("flow %v is on %s:%d, the model's on %s:%d", k, AddrFrom(rf.Pub), rf.PubPort, AddrFrom(f.pub), f.pubPort)
		case rf.State != f.state || rf.Flags&tcpTrackFlags != f.flags || rf.LastSeen != f.last:
			r.failf("flow %v state %d flags %#x last %d, the model's %d %#x %d", k, rf.State, rf.Flags, rf.LastSeen, f.state, f.flags, f.last)
		case rf.AckPriv != f.ackPriv || rf.AckRemote != f.ackRemote || rf.winPriv != f.winPriv || rf.winRemote != f.winRemote ||
			rf.wscale != f.wsPriv|f.wsRemote<<4:
			r.failf("flow %v acks %d/%d windows %d/%d scales %#x, the model's %d/%d %d/%d %#x", k, rf.AckPriv, rf.AckRemote,
				rf.winPriv, rf.winRemote, rf.wscale, f.ackPriv, f.ackRemote, f.winPriv, f.winRemote, f.wsPriv|f.wsRemote<<4)
		}
		if r.err != nil {
			return
		}
	}
	// Every flow of the table is one of the model's; no public 5-tuple
	// twice; usage counts and gauges add up.
	pubs := map[InKey]bool{}
	usage := map[portalloc.Key]int{}
	var active [3]uint64
	n := 0
	var nDraining uint64
	r.t.flows.Range(func(_ uint32, f *Flow) bool {
		n++
		k := OutKey{Priv: f.Priv, Remote: f.Remote, PrivPort: f.PrivPort, RemotePort: f.RemotePort, Proto: f.Proto}
		mf := m.flows[k]
		if mf == nil {
			mf = m.zombies[k]
		}
		if mf == nil || mf.pub != f.Pub || mf.pubPort != f.PubPort {
			r.failf("translator has flow %v on %s:%d the model doesn't know", k, AddrFrom(f.Pub), f.PubPort)
			return false
		}
		ik := InKey{Pub: f.Pub, Remote: f.Remote, PubPort: f.PubPort, RemotePort: f.RemotePort, Proto: f.Proto}
		if pubs[ik] {
			r.failf("public 5-tuple %v held twice", ik)
			return false
		}
		pubs[ik] = true
		draining := f.Flags&flagDraining != 0
		if f.Gen == gen && draining != (mf.draining && m.flows[k] == mf) {
			r.failf("flow %v on %s:%d draining %v under generation %d, the model's %v", k, AddrFrom(f.Pub), f.PubPort, draining, gen, mf.draining)
			return false
		}
		if draining {
			nDraining++
		}
		// Draining flows left their member's usage (those the translator
		// has marked; the others still count).
		if mf.kind != ScenarioInstance && !draining {
			usage[mf.usageKey()]++
		}
		active[ProtoIndex(f.Proto)]++
		return true
	})
	if r.err != nil {
		return
	}
	if nDraining != r.t.Stats.FlowsDraining {
		r.failf("flows_draining = %d, the table holds %d draining flows", r.t.Stats.FlowsDraining, nDraining)
		return
	}
	if n != r.t.flows.Len() || n != len(m.flows)+len(m.zombies) {
		r.failf("translator holds %d flows (Len %d), the model %d live and %d reclaimed", n, r.t.flows.Len(), len(m.flows), len(m.zombies))
		return
	}
	for k, c := range usage {
		if got := r.t.usage.Count(k); got != c {
			r.failf("usage count of %v is %d, its flows are %d", k, got, c)
			return
		}
	}
	if r.t.usage.Len() != len(usage) {
		r.failf("usage holds %d destinations, flows use %d", r.t.usage.Len(), len(usage))
		return
	}
	st := &r.t.Stats
	var created, expired uint64
	for i := range 3 {
		if st.FlowsActive[i] != active[i] {
			r.failf("flows_active[%d] = %d, the table holds %d", i, st.FlowsActive[i], active[i])
			return
		}
		if st.FlowsCreated[i] != m.created[i] {
			r.failf("flows_created[%d] = %d, the model created %d", i, st.FlowsCreated[i], m.created[i])
			return
		}
		created += st.FlowsCreated[i]
	}
	for _, e := range st.FlowsExpired {
		expired += e
	}
	if created-expired != uint64(n) {
		r.failf("flows created %d - expired %d (%v) != %d live", created, expired, st.FlowsExpired, n)
		return
	}
	if st.Verdicts != m.verdicts || st.Packets != m.packets {
		r.failf("verdict counters %v packets %v, the model's %v %v", st.Verdicts, st.Packets, m.verdicts, m.packets)
		return
	}
	r.checkMappings()
	r.checkDefaultSNAT()
}

// checkMappings checks the translator's endpoint-independent mappings
// against the flows that hold them (issue 19): one per private endpoint
// of such flows, on their public endpoint, and none without a flow.
func (r *mRun) checkMappings() {
	type endpoint struct {
		proto uint8
		priv  uint32
		port  uint16
	}
	want := map[endpoint][2]uint32{}
	for _, set := range []map[OutKey]*mFlow{r.m.flows, r.m.zombies} {
		for _, f := range set {
			if !f.eim {
				continue
			}
			e := endpoint{f.key.Proto, f.key.Priv, f.key.PrivPort}
			pe := [2]uint32{f.pub, uint32(f.pubPort)}
			if o, ok := want[e]; ok && o != pe {
				r.failf("private endpoint %v has flows on %s:%d and %s:%d", e, AddrFrom(o[0]), o[1], AddrFrom(pe[0]), pe[1])
				return
			}
			want[e] = pe
		}
	}
	if got := r.t.Mappings(); got != len(want) {
		r.failf("translator holds %d mappings, the flows hold %d", got, len(want))
		return
	}
	for e, pe := range want {
		pub, port, ok := r.t.MappingOf(e.proto, e.priv, e.port)
		if !ok || pub != pe[0] || uint32(port) != pe[1] {
			r.failf("mapping of %v is %s:%d (%v), its flows' %s:%d", e, AddrFrom(pub), port, ok, AddrFrom(pe[0]), pe[1])
			return
		}
	}
}

// checkDefaultSNAT checks the default-SNAT assigner against the flows it
// must count [S1]: each source's flow count, and no block held twice.
func (r *mRun) checkDefaultSNAT() {
	m := r.m
	d := m.pol.DefaultSNAT()
	counts := map[uint32]int{}
	for _, fs := range []map[OutKey]*mFlow{m.flows, m.zombies} {
		for _, f := range fs {
			if f.kind == ScenarioDefault && f.alloc == d && !f.pending {
				counts[f.key.Priv]++
			}
		}
	}
	var blocks []portalloc.Block
	for _, h := range mHosts {
		b, ok := d.Lookup(h)
		if mb, seen := m.defBlocks[h]; seen && (!ok || b != mb) {
			r.failf("default-SNAT source %s holds %v (ok=%v), the model saw it given %v", AddrFrom(h), b, ok, mb)
			return
		}
		if got := d.Flows(h); got != counts[h] {
			r.failf("default SNAT counts %d flows of %s, it has %d", got, AddrFrom(h), counts[h])
			return
		}
		if b, ok := d.Lookup(h); ok {
			if b.Size() != m.spec.defPPM || b.Public != mFEDef[m.spec.defFE] {
				r.failf("default-SNAT block %v of %s, want %d ports on %s", b, AddrFrom(h), m.spec.defPPM, AddrFrom(mFEDef[m.spec.defFE]))
				return
			}
			blocks = append(blocks, b)
		}
	}
	for i := range blocks {
		for j := range i {
			if blocks[i].Public == blocks[j].Public && blocks[i].First <= blocks[j].Last && blocks[j].First <= blocks[i].Last {
				r.failf("default-SNAT blocks %v and %v overlap", blocks[i], blocks[j])
				return
			}
		}
	}
}

// runModel runs one random sequence of steps and returns the first
// discrepancy, with the trace of the operations before it.
func runModel(seed uint64, steps int, knobs uint8, cov *mCoverage) error {
	return runModelSpec(seed, steps, knobs, false, cov)
}

// runModelSpec is runModel; with eim the pool and default SNAT map
// endpoint independently, with filtering drawn from the seed (issue 19).
func runModelSpec(seed uint64, steps int, knobs uint8, eim bool, cov *mCoverage) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := mSpec{poolN: 3, defPPM: 1024, to: [5]int{240, 30, 10, 60, 60}}
	if eim {
		s.eim = true
		s.filt = [2]FilteringMode{FilteringMode(seed % 3), FilteringMode(seed / 3 % 3)}
	}
	if knobs&1 != 0 {
		s.ppm = 8
	}
	if knobs&2 != 0 {
		s.poolN = 50
	}
	if knobs&0x20 != 0 {
		s.drain = true
	}
	p, err := Compile(s.policySpec(), nil)
	if err != nil {
		return err
	}
	now := Tick(1 << 20)
	r := &mRun{
		t: NewTranslator(p, TranslatorOptions{FlowCapacity: mCapacity, Seed: seed}, now),
		m: &model{spec: s, pol: p, flows: map[OutKey]*mFlow{}, zombies: map[OutKey]*mFlow{}, dead: map[OutKey]*mFlow{},
			cursor: now &^ (mSlot - 1), cov: cov, defBlocks: map[uint32]portalloc.Block{}},
		rng:    rng,
		now:    now,
		spread: 4 + int(knobs>>2&7)*4,
	}
	for i := 0; i < steps && r.err == nil; i++ {
		if len(r.m.dead) > 64 {
			clear(r.m.dead)
		}
		switch x := rng.IntN(100); {
		case x < 10:
			r.reload()
		case x < 25:
			r.now += Tick(rng.IntN(3000))
		case x < 30:
			r.now += Tick(pick(rng, []int{5, 10, 30, 60, 120, 241, 600}) * 1000)
		}
		if r.err != nil {
			break
		}
		if len(r.m.flows)+len(r.m.zombies) < mCapacity/2 {
			if rng.IntN(8) == 0 {
				r.burst(DirOut, 1, true)
			} else {
				r.burst(DirOut, 1+rng.IntN(12), false)
			}
			if r.err == nil {
				if rng.IntN(8) == 0 {
					r.burst(DirIn, 1, true)
				} else {
					r.burst(DirIn, 1+rng.IntN(12), false)
				}
			}
		}
		if r.err == nil && len(r.frags) > 0 {
			r.laterFragments()
		}
		if r.err == nil {
			r.housekeeping()
		}
	}
	if r.err != nil {
		return fmt.Errorf("seed %d knobs %d: %w\nlast operations:\n  %s", seed, knobs, r.err, strings.Join(r.trace, "\n  "))
	}
	return nil
}

// TestTranslatorModel runs fixed seeds of the differential test: random
// packets through the burst path, time jumps and reloads, compared with
// the model after every burst.
func TestTranslatorModel(t *testing.T) {
	// Bounded: about 8 s, and 16 shorter sequences (2 s; 11 s under the
	// race detector) with -short or -race. Longer runs: the fuzz target.
	seeds, steps := 48, 400
	if testing.Short() || raceEnabled {
		seeds, steps = 16, 200
	}
	var cov mCoverage
	for seed := range uint64(seeds) {
		knobs := uint8(seed * 37)
		if err := runModel(seed+1, steps, knobs, &cov); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("coverage: %+v", cov)
}

// TestTranslatorModelEIM is TestTranslatorModel with endpoint-independent
// mapping for the pool and default SNAT, every filtering for each, and
// reloads that change the filtering (issue 19).
func TestTranslatorModelEIM(t *testing.T) {
	seeds, steps := 27, 400
	if testing.Short() || raceEnabled {
		seeds, steps = 9, 200
	}
	var cov mCoverage
	for seed := range uint64(seeds) {
		knobs := uint8(seed * 37)
		if err := runModelSpec(seed, steps, knobs, true, &cov); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("coverage: %+v", cov)
}

// FuzzTranslatorModel runs the differential test over fuzzed seeds and
// knobs (block size, pool tier, port spread).
func FuzzTranslatorModel(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed, uint8(seed*37))
	}
	f.Fuzz(func(t *testing.T, seed uint64, knobs uint8) {
		if err := runModel(seed, 150, knobs, &mCoverage{}); err != nil {
			t.Fatal(err)
		}
	})
}
