package lcore

import (
	"encoding/binary"
	"log/slog"
	"runtime"
	"sync/atomic"

	"github.com/natgw/natgw/nat"
)

// This file is a worker lcore. A Worker owns, and alone touches: queue w of
// each port, its translator (flow table, port usage), its fragment table,
// its TX buffers and its counters. It talks to other cores only through
// SPSC rings (handoff to other workers, frames for the management core) and
// reads shared state (policy, neighbours) through atomic pointers between
// bursts. Nothing on its packet path locks or allocates.

// Burst is the number of frames a worker receives or sends per call.
const Burst = 64

// handoffDrainBursts is the number of bursts a worker takes from each
// handoff ring per poll (it receives one burst per port per poll).
const handoffDrainBursts = 4

// Work items sent to the management core through a worker's ToMgmt ring
// (Packet.Flags bits above the driver's).
const (
	// MsgARP: an ARP frame to learn from or answer.
	MsgARP uint16 = 1 << (8 + iota)
	// MsgTimeExceeded: answer this IPv4 packet with ICMP time exceeded.
	MsgTimeExceeded
	// MsgFragNeeded: answer this IPv4 packet with ICMP fragmentation
	// needed (the egress MTU is in FragSport).
	MsgFragNeeded
	// MsgResolve: resolve the neighbour whose IPv4 address is in the first
	// four bytes of Data.
	MsgResolve
	// MsgGlean: an inside host's address (4 bytes) and MAC (6 bytes) seen
	// as the source of a frame, so its replies need not wait for ARP.
	MsgGlean
	// MsgReset: an idle established TCP flow to reset at both ends
	// (tcp_reset_on_idle), encoded by encodeReset.
	MsgReset
)

// WorkerCounters are a worker's counters, written by the worker only (with
// atomic stores, once per poll loop) and read by the management core.
type WorkerCounters struct {
	Verdicts     [nat.NumVerdicts]atomic.Uint64
	Packets      [2]atomic.Uint64
	Bytes        [2]atomic.Uint64
	FlowsCreated [3]atomic.Uint64
	FlowsExpired [nat.NumExpireReasons]atomic.Uint64
	FlowsActive  [3]atomic.Uint64
	// FlowsDraining and FlowsDrained mirror nat.Stats.FlowsDraining and
	// Drained (draining flows, issue 19).
	FlowsDraining  atomic.Uint64
	FlowsDrained   [nat.NumDrainOutcomes]atomic.Uint64
	HandoffPackets atomic.Uint64
	// Frag counts the fragment table's events (FragHeld...).
	Frag      fragCounters
	RxPackets atomic.Uint64
	Polls     atomic.Uint64
	BusyPolls atomic.Uint64
	// PollGaps[i] counts the gaps between the starts of two successive
	// polls longer than PollGapLimits()[i]; PollGapMax is the longest
	// gap (ns) of the current and the previous PollGapWindow
	// (pollgap.go).
	PollGaps   [NumPollGapLimits]atomic.Uint64
	PollGapMax atomic.Int64
	// LastPoll is the worker's clock (nat.Tick) at its last poll.
	LastPoll atomic.Uint64
	// BuffersInUse is how many packet buffers of the worker's queues are
	// out of their pools between polls (queues that can tell: see
	// BufferCounter); -1 when no queue can.
	BuffersInUse atomic.Int64
	// Exhausted mirrors Stats.Exhausted (pool index order, default SNAT
	// last) with the generation of the policy that names the pools; nil
	// before the first publish. It points to counts the management core
	// made with the policy (nat.ExhaustedCounts): publishing allocates
	// nothing.
	Exhausted atomic.Pointer[nat.ExhaustedCounts]

	// Fragmented counts packets cut into fragments at egress, and
	// Fragments the fragments sent for them (fragmenter.go).
	Fragmented, Fragments atomic.Uint64
	// Hot is the worker's hot set: the member and destination pairs
	// closest to exhaustion (hot.go).
	Hot HotCounters
	// Rejects counts refused flows answered (on_exhaustion = "reject",
	// reject.go): SYNs reset by the worker, other packets handed to the
	// management core for an ICMP error; RejectsLimited those the
	// worker's rate limit left unanswered.
	Rejects, RejectsLimited atomic.Uint64
	// RedirectNoPeer counts new outbound flows a draining worker
	// translated itself because no cluster peer was resolved
	// (redirect.go); redirected packets are Verdicts[VerdictRedirect].
	RedirectNoPeer atomic.Uint64
}

// WorkerConfig wires a worker.
type WorkerConfig struct {
	ID      int
	Workers int
	Ports   [NumPorts]Port
	Policy  *nat.PolicyHolder
	Neigh   *NeighborHolder
	Owner   *Owner
	// HandoffOut[j] carries packets to worker j (nil for j == ID);
	// HandoffIn[j] from worker j.
	HandoffOut, HandoffIn []*Ring
	// ToMgmt carries work for the management core.
	ToMgmt *Ring
	// ExpireNow is published by the management core: workers expire flows
	// up to this tick.
	ExpireNow *atomic.Uint64
	// Clock returns the current tick.
	Clock func() nat.Tick
	// MTU, when set, is the ports' MTU published by the management core
	// (Manager.MTU); the worker loads it once per poll. Without it the
	// ports' MTU at start is kept.
	MTU *[NumPorts]atomic.Int32
	// FlowCapacity is this worker's share of the flow table.
	FlowCapacity int
	Seed         uint64
	// OnExhausted is passed to the translator.
	OnExhausted func(nat.ExhaustEvent)
	// Sessions, when set, receives the worker's session events while
	// the policy exports them (session.go).
	Sessions *SessionRing
	// Pin, when set, pins the worker's thread to CPU in Run
	// (dataplane.worker_cpus; see affinity.go).
	Pin bool
	// CPU is the CPU a pinned worker runs on.
	CPU int
	// Priority, 1 to 99, makes a pinned worker's thread SCHED_FIFO at
	// that priority in Run (dataplane.worker_priority; see rtsched.go);
	// 0 keeps the normal policy.
	Priority int
	// Redirect, when set, is the node's drain switch (Manager.Redirect):
	// while it is true the worker sends new outbound flows to a cluster
	// peer (redirect.go). The worker loads it once per poll.
	Redirect *atomic.Bool
	// Log receives the worker's few log lines (nil: slog.Default()).
	Log *slog.Logger
}

// Worker is one poll-mode worker lcore.
type Worker struct {
	id, workers int
	q           [NumPorts]Queue
	mac         [NumPorts][6]byte
	mtu         [NumPorts]int
	tr          *nat.Translator
	pol         *nat.PolicyHolder
	neigh       *NeighborHolder
	owner       *Owner
	handOut     []*Ring
	handIn      []*Ring
	toMgmt      *Ring
	expireNow   *atomic.Uint64
	mtuSrc      *[NumPorts]atomic.Int32
	clock       func() nat.Tick
	frags       fragTable
	sweeping    bool
	gaps        pollGaps
	// gleaned caches inside sources recently offered to the management
	// core for learning: 4096 sets of 2 (two ways, so two sources whose
	// addresses share a set don't evict each other on every packet).
	gleaned [gleanSets][2]uint32

	// Counters are the published counters.
	Counters WorkerCounters
	local    struct{ handoff, rx, polls, busy, fragmented, fragments uint64 }
	fragPool *PacketPool             // buffers of later fragments (fragmenter.go)
	drops    [nat.NumVerdicts]uint64 // drops decided by the worker itself

	rx       [Burst]*Packet
	batch    [NumPorts][Burst * 2]*Packet
	l3       [NumPorts][Burst * 2][]byte
	nbatch   [NumPorts]int
	verdicts [NumPorts][Burst * 2]nat.Verdict // per port: hairpinning fills one port's batch while the other's is acted on
	tx       [NumPorts][Burst * 2]*Packet
	ntx      [NumPorts]int
	ringPkts [Burst]*Packet
	// checking are the packets of the outbound burst being translated,
	// for checkSource and redirectNew; checkBase is the index of the
	// first in the port's batch.
	checking  []*Packet
	checkBase int
	stop      atomic.Bool
	qs        queryState // management queries and utilisation scan (query.go)
	pin       bool
	cpu       int
	prio      int
	setup     chan<- error // when set, gets Run's thread setup outcome (Runtime.Start)
	log       *slog.Logger
	// sessions and sessHook: NAT session events (session.go).
	sessions *SessionRing
	sessHook nat.SessionHook

	rej rejectState  // on_exhaustion = "reject" (reject.go)
	cl  clusterState // cluster peers and the drain's redirection (redirect.go)
}

// NewWorker builds a worker; it does not start it.
func NewWorker(c WorkerConfig) *Worker {
	now := c.Clock()
	w := &Worker{
		id: c.ID, workers: c.Workers, pol: c.Policy, neigh: c.Neigh, owner: c.Owner,
		handOut: c.HandoffOut, handIn: c.HandoffIn, toMgmt: c.ToMgmt,
		expireNow: c.ExpireNow, mtuSrc: c.MTU, clock: c.Clock, pin: c.Pin, cpu: c.CPU, prio: c.Priority, log: c.Log,
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	for p := uint8(0); p < NumPorts; p++ {
		w.q[p] = c.Ports[p].Queue(c.ID)
		w.mac[p] = c.Ports[p].MAC()
		w.mtu[p] = c.Ports[p].MTU()
	}
	w.tr = nat.NewTranslator(c.Policy.Load(), nat.TranslatorOptions{
		Worker: c.ID, Workers: c.Workers, FlowCapacity: c.FlowCapacity, Seed: c.Seed, OnExhausted: c.OnExhausted,
		SourceCheck: w.checkSource, Redirect: w.redirectNew,
	}, now)
	// The policy holder prepares what the translator needs for each new
	// policy (an endpoint-independent mapping table...) before it
	// publishes it: a reload allocates nothing on the worker.
	c.Policy.Attach(w.tr)
	w.cl.on = c.Redirect
	w.frags.init()
	w.gaps.init()
	w.fragPool = NewPacketPool(fragPoolSize, fragBufSize)
	w.sessions, w.sessHook = c.Sessions, w.sessionHook
	w.applySessions(c.Policy.Load())
	return w
}

// Translator returns the worker's translator. It may only be used from the
// worker's goroutine (or while the worker is stopped).
func (w *Worker) Translator() *nat.Translator { return w.tr }

// Run polls until Stop, on a goroutine locked to its OS thread. idleWait
// is how long (ns) a poll that found nothing may block in the driver.
// A pinned worker's goroutine ends still locked, so its thread, whose CPU
// mask is the worker CPU alone (and whose policy may be SCHED_FIFO),
// exits with it instead of going back to Go's pool of threads. If the
// thread cannot be set up (setupThread) Run returns without polling.
func (w *Worker) Run(idleWait int64) {
	runtime.LockOSThread()
	err := w.setupThread() // rtsched.go
	if w.setup != nil {
		w.setup <- err
	}
	if err != nil {
		return // the thread stays locked: Go ends it with the goroutine
	}
	if !w.pin {
		defer runtime.UnlockOSThread()
	}
	idle := 0
	for !w.stop.Load() {
		if w.PollOnce() {
			idle = 0
			continue
		}
		if idle++; idle > 64 && idleWait > 0 {
			w.q[PortInside].Wait(idleWait / 2)
			w.q[PortOutside].Wait(idleWait / 2)
			w.gaps.skip() // waiting idle is no stall
		}
	}
	w.publish()
}

// Stop asks Run to return.
func (w *Worker) Stop() { w.stop.Store(true) }

// PollOnce runs one iteration of the worker loop and reports whether it
// found any work: pick up a new policy, receive a burst on each port and
// from each handoff ring, translate, transmit, expire.
func (w *Worker) PollOnce() bool {
	w.gaps.note()
	now := w.clock()
	if p := w.pol.Load(); p != w.tr.Policy() {
		w.switchPolicy(p, now)
	}
	neigh := w.neigh.Load()
	w.clusterPoll(neigh)
	if w.mtuSrc != nil {
		w.mtu[PortInside] = int(w.mtuSrc[PortInside].Load())
		w.mtu[PortOutside] = int(w.mtuSrc[PortOutside].Load())
	}
	work := 0
	for port := uint8(0); port < NumPorts; port++ {
		n := w.q[port].RxBurst(w.rx[:])
		work += n
		w.local.rx += uint64(n)
		for _, p := range w.rx[:n] {
			p.Port = port
			w.classify(p)
			w.releaseHeld()
		}
		w.translate(port, neigh, now)
	}
	for _, r := range w.handIn {
		if r == nil {
			continue
		}
		// Up to handoffDrainBursts bursts per ring and poll, so a burst
		// of one flow handed over by a busy worker is taken in as fast
		// as that worker receives it.
		for range handoffDrainBursts {
			n := r.Peek(w.ringPkts[:])
			if n == 0 {
				break
			}
			work += n
			for _, p := range w.ringPkts[:n] {
				w.classify(p)
				w.releaseHeld()
			}
			for port := uint8(0); port < NumPorts; port++ {
				w.translate(port, neigh, now)
			}
			w.flush() // ring slots are copied out by TxBurst before release
			r.Release(n)
		}
	}
	w.flush()
	w.fragPoll(now)
	if t := nat.Tick(w.expireNow.Load()); t != 0 {
		w.tr.Expire(t, 256)
		for _, f := range w.tr.TakeResets() {
			w.pushReset(&f)
		}
	}
	w.tr.ExpireDrained(now, 1024) // one comparison while no drain deadline is due
	if w.sweeping {
		w.sweeping = !w.tr.Sweep(1024)
	}
	w.serveQueries(now)
	w.local.polls++
	if work > 0 {
		w.local.busy++
	}
	if w.local.polls&63 == 0 || work == 0 {
		w.publish()
	}
	w.Counters.LastPoll.Store(uint64(now))
	return work > 0
}

// switchPolicy makes p the worker's running policy: the worker's side of
// a reload. It allocates nothing: the policy holder prepared what the
// translator needs before it published p (nat.PolicyHolder.Attach).
func (w *Worker) switchPolicy(p *nat.Policy, now nat.Tick) {
	w.tr.SetPolicyAt(p, now) // flows it drains count their deadline from now
	w.applySessions(p)
	w.sweeping = true
}

// classify checks a frame's link layer, finds the worker that owns it and
// either hands it over or queues it for translation here.
func (w *Worker) classify(p *Packet) {
	if len(p.Data) < nat.EthernetLen {
		w.drop(p, nat.DropMalformed)
		return
	}
	eth := nat.Ethernet(p.Data)
	// Both drivers receive promiscuously: only frames to the port's own
	// MAC, and broadcast ARP, are natgw's to handle (issue 14 item 2).
	if eth.Dst() != w.mac[p.Port&1] && !isBroadcastARP(eth) {
		w.drop(p, nat.DropNotForUs)
		return
	}
	switch eth.EtherType() {
	case nat.EtherTypeIPv4:
	case nat.EtherTypeARP:
		p.Flags |= MsgARP
		w.toMgmt.Push(p)
		w.free(p)
		return
	default:
		w.drop(p, nat.DropUnsupported)
		return
	}
	l3 := p.Data[nat.EthernetLen:]
	if p.Port == PortInside && len(l3) >= nat.IPv4MinLen {
		w.glean(nat.IPv4(l3).Src(), eth)
	}
	if p.Flags&FlagOwned == 0 {
		owner, final, ok := w.ownerOf(p, l3)
		if !ok {
			return // dropped
		}
		if owner != w.id {
			if final {
				p.Flags |= FlagOwned
			} // else: to the fragment owner, which finds the flow's owner
			w.pushTo(owner, p)
			w.free(p)
			return
		}
	}
	if ipLen := ipTotalLen(l3); ipLen > w.mtu[1-p.Port] && nat.IPv4(l3).DF() {
		// Too big for the egress link, with DF: the sender learns the
		// MTU (path MTU discovery through natgw). Without DF the packet
		// is fragmented after translation (forward).
		p.Flags |= MsgFragNeeded
		p.FragSport = uint16(w.mtu[1-p.Port])
		w.toMgmt.Push(p)
		w.drop(p, nat.DropFragment)
		return
	}
	if p.Flags&FlagCsumNotReady != 0 {
		if ip, ok := nat.ParseIPv4(l3); ok {
			nat.CompleteChecksum(ip)
		}
		p.Flags &^= FlagCsumNotReady
	}
	port := p.Port
	i := w.nbatch[port]
	w.batch[port][i] = p
	w.l3[port][i] = l3
	w.nbatch[port] = i + 1
	if i+1 == len(w.batch[port]) {
		w.translate(port, w.neigh.Load(), w.clock())
	}
}

// isBroadcastARP reports whether a frame (at least an Ethernet header) is
// an ARP frame to the broadcast MAC.
func isBroadcastARP(eth nat.Ethernet) bool {
	return eth.Dst() == [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} && eth.EtherType() == nat.EtherTypeARP
}

// ownerOf returns the worker owning a packet (SPEC §3): the Toeplitz hash
// of its remote endpoint. Fragments first go to the worker that tracks
// their datagram (final false: that worker runs ownerOf again), which
// learns the ports from the first fragment and then sends every fragment
// to the flow's owner.
func (w *Worker) ownerOf(p *Packet, l3 []byte) (owner int, final, ok bool) {
	if w.workers == 1 {
		if isFragment(l3) {
			return w.id, true, w.fragment(p, l3)
		}
		return w.id, true, true
	}
	if _, ok := nat.ParseIPv4Embedded(l3); !ok {
		return w.id, true, true // the translator counts it malformed
	}
	if isFragment(l3) {
		if f := fragOwner(l3, w.workers); f != w.id {
			return f, false, true
		}
		if !w.fragment(p, l3) {
			return 0, false, false
		}
		if p.Flags&FlagFragPorts != 0 {
			return w.portOwner(p, l3, p.FragSport, p.FragDport), true, true
		}
		// A first fragment: its own ports decide below.
	}
	return w.flowOwner(p, l3), true, true
}

// flowOwner returns the owner of a packet that carries its transport
// header (not a later fragment).
func (w *Worker) flowOwner(p *Packet, l3 []byte) int {
	ip := nat.IPv4(l3)
	kind, sport, dport := nat.ReadTransport(ip.Protocol(), ip.Payload())
	switch kind {
	case nat.TransportPorts:
		return w.endpointOwner(p.Port, ip.Src(), ip.Dst(), sport, dport)
	case nat.TransportEcho:
		return w.endpointOwner(p.Port, ip.Src(), ip.Dst(), 0, 0)
	case nat.TransportICMPError:
		return w.quoteOwner(p.Port, nat.ICMP(ip.Payload()).Payload())
	}
	return w.id
}

// portOwner hashes the remote endpoint: the destination of packets from the
// inside, the source of packets from the outside.
func (w *Worker) portOwner(p *Packet, l3 []byte, sport, dport uint16) int {
	ip := nat.IPv4(l3)
	return w.endpointOwner(p.Port, ip.Src(), ip.Dst(), sport, dport)
}

func (w *Worker) endpointOwner(port uint8, src, dst uint32, sport, dport uint16) int {
	if port == PortInside {
		return w.owner.Of(dst, dport)
	}
	return w.owner.Of(src, sport)
}

// quoteOwner finds the owner of an ICMP error through the packet it
// quotes: coming in, the quote went out (its destination is the remote);
// going out, the quote came in (its source is the remote).
func (w *Worker) quoteOwner(port uint8, quote []byte) int {
	emb, ok := nat.ParseIPv4Embedded(quote)
	if !ok {
		return w.id
	}
	kind, sport, dport := nat.ReadTransport(emb.Protocol(), emb.Payload())
	switch kind {
	case nat.TransportPorts:
	case nat.TransportEcho:
		sport, dport = 0, 0 // echo: remote port 0
	default:
		return w.id
	}
	if port == PortOutside {
		return w.owner.Of(emb.Dst(), dport)
	}
	return w.owner.Of(emb.Src(), sport)
}

// translate runs the queued packets of one port through the translator and
// acts on the verdicts.
func (w *Worker) translate(port uint8, neigh *Neighbors, now nat.Tick) {
	n := w.nbatch[port]
	if n == 0 {
		return
	}
	w.nbatch[port] = 0
	pkts, l3s, verdicts := w.batch[port][:n], w.l3[port][:n], w.verdicts[port][:n]
	w.translateInOrder(port, pkts, l3s, verdicts, now)
	egress := PortOutside
	if port == PortOutside {
		egress = PortInside
	}
	for i, p := range pkts {
		switch v := verdicts[i]; v {
		case nat.VerdictForward:
			w.forward(p, l3s[i], egress, neigh)
		case nat.VerdictHairpin:
			w.hairpin(p, l3s[i])
		case nat.VerdictHandoff:
			w.handoff(p, l3s[i], port)
		case nat.VerdictRedirect:
			w.redirect(p, i)
		case nat.VerdictLocal:
			if p.Flags&FlagHairpin != 0 {
				// For natgw itself, from the inside through a
				// public address: not answered.
				w.drop(p, nat.DropNoFlow)
				break
			}
			w.answerLocal(p)
		case nat.DropTTLExceeded:
			p.Flags |= MsgTimeExceeded
			w.toMgmt.Push(p)
			w.free(p)
		case nat.DropPortExhausted:
			w.rejectExhausted(p, l3s[i], port, now)
		default:
			w.free(p)
		}
	}
}

// translateInOrder translates a port's packets in arrival order: runs of
// ordinary packets in one batched call each, later fragments one by one
// (their first fragment, earlier in the run, must have opened the flow).
func (w *Worker) translateInOrder(port uint8, pkts []*Packet, l3s [][]byte, verdicts []nat.Verdict, now nat.Tick) {
	start := 0
	for i := 0; i <= len(pkts); i++ {
		if i < len(pkts) && pkts[i].Flags&FlagFragPorts == 0 {
			continue
		}
		if i > start {
			if port == PortInside {
				w.checking, w.checkBase = pkts[start:i], start
				w.tr.OutboundBurst(l3s[start:i], verdicts[start:i], now)
				w.checking = nil
			} else {
				w.tr.InboundBurst(l3s[start:i], verdicts[start:i], now)
			}
		}
		if i < len(pkts) {
			p := pkts[i]
			if port == PortInside {
				w.checking, w.checkBase = pkts[i:i+1], i
				verdicts[i] = w.tr.OutboundFragment(l3s[i], p.FragSport, p.FragDport, now)
				w.checking = nil
			} else {
				verdicts[i] = w.tr.InboundFragment(l3s[i], p.FragSport, p.FragDport, now)
			}
		}
		start = i + 1
	}
}

// forward rewrites the link layer and queues a translated packet for the
// egress port: to the gateway going out, to the private host coming in.
func (w *Worker) forward(p *Packet, l3 []byte, egress uint8, neigh *Neighbors) {
	ip := nat.IPv4(l3)
	next := ip.Dst()
	var mac [6]byte
	var ok bool
	if egress == PortOutside {
		next = neigh.Gateway
		mac, ok = neigh.GatewayMAC()
	} else {
		// A host of a routed prefix ([[inside.routed]]) is reached
		// through its router; an on-link host directly.
		if hop, routed := w.tr.Policy().InsideNextHop(next); routed {
			next = hop
		}
		mac, ok = neigh.Lookup(next)
	}
	if !ok {
		w.drop(p, nat.DropNoNeighbor)
		w.resolve(next)
		return
	}
	eth := nat.Ethernet(p.Data)
	eth.SetDst(mac)
	eth.SetSrc(w.mac[egress])
	p.Data = p.Data[:nat.EthernetLen+len(l3)] // drop any link padding
	if ipTotalLen(l3) > w.mtu[egress] {
		w.fragmentTx(p, l3, egress)
		return
	}
	w.queueTx(egress, p)
}

// checkSource is the translator's source check (inside.source_check),
// asked about new outbound flows only: packet i of the burst being
// translated, from private address src, would open a flow (and take a new
// default-SNAT block when newBlock). The source must be on the inside link
// or in a routed prefix, and its frame must come from the MAC that ARP
// confirmed for it, or for its router: natgw's neighbour snapshot is the
// binding. A host ARP has not confirmed yet may open flows of its own
// mapping (a pool member, an instance, a default-SNAT block it holds)
// while natgw asks for it, but gets no new default-SNAT block; a routed
// source needs its router confirmed.
func (w *Worker) checkSource(i int, src uint32, newBlock bool) nat.Verdict {
	if i >= len(w.checking) {
		return nat.VerdictForward // not from a burst of the inside port
	}
	hop, ok := w.tr.Policy().InsideNextHop(src)
	if !ok {
		return nat.DropSpoofed
	}
	var from [6]byte
	copy(from[:], nat.Ethernet(w.checking[i].Data).SrcMAC())
	if w.cl.n > 0 && w.cl.isPeer(from) {
		// A draining cluster peer redirected the flow (redirect.go);
		// it checked the source.
		return nat.VerdictForward
	}
	mac, confirmed, known := w.neigh.Load().Binding(hop)
	if known && confirmed {
		if mac != from {
			return nat.DropSpoofed
		}
		return nat.VerdictForward
	}
	w.resolve(hop)
	if newBlock || hop != src {
		return nat.DropSpoofed
	}
	return nat.VerdictForward
}

// hairpin sends a packet of a hairpin flow, translated outbound (its
// source is now the sender's public address and port, its destination a
// public address of natgw), through the inbound path as if it had arrived
// on the outside port (RFC 4787 REQ-9, RFC 5382 REQ-8). Its inbound owner
// is the hash of its new source, the sender's public endpoint, which is in
// general another worker than the outbound owner: classify hands it over
// like any frame from the outside. It never leaves natgw on the way.
// Fragments of hairpinned datagrams are dropped: the fragment tracker
// would see them as datagrams of the outside.
func (w *Worker) hairpin(p *Packet, l3 []byte) {
	if isFragment(l3) {
		w.drop(p, nat.DropFragment)
		return
	}
	eth := nat.Ethernet(p.Data)
	eth.SetSrc(w.mac[PortInside])
	eth.SetDst(w.mac[PortOutside])
	p.Port = PortOutside
	p.Flags = p.Flags&^FlagOwned | FlagHairpin
	w.classify(p)
}

// handoff hands a packet the translator left untouched to the worker that
// owns its endpoint-independent mapping (nat.HandoffOwner; docs/DESIGN.md,
// "Mapping behaviours"): a packet of such a flow arrives at the owner of
// its remote endpoint, misses there, and is translated by the mapping's
// owner, which always finds itself the owner.
func (w *Worker) handoff(p *Packet, l3 []byte, port uint8) {
	dir := nat.DirOut
	if port == PortOutside {
		dir = nat.DirIn
	}
	owner := nat.HandoffOwner(l3, dir, p.Flags&FlagFragPorts != 0, p.FragSport, p.FragDport, w.workers)
	if owner == w.id || owner >= len(w.handOut) || w.handOut[owner] == nil {
		w.drop(p, nat.DropNoFlow) // never: the translator found another owner
		return
	}
	p.Flags |= FlagOwned
	w.pushTo(owner, p)
	w.free(p)
}

// pushTo copies p into the handoff ring to worker owner, counting it, or
// the drop when the ring is full; p stays the caller's.
func (w *Worker) pushTo(owner int, p *Packet) {
	if !w.handOut[owner].Push(p) {
		w.drops[nat.DropHandoffFull]++
	} else {
		w.local.handoff++
	}
}

// answerLocal answers echo requests to natgw's own addresses in place; other
// traffic for natgw itself is dropped.
func (w *Worker) answerLocal(p *Packet) {
	l3 := p.Data[nat.EthernetLen:]
	ip, ok := nat.ParseIPv4(l3)
	if !ok || ip.Protocol() != nat.ProtoICMP {
		w.drop(p, nat.DropUnsupported)
		return
	}
	icmp, ok := nat.ParseICMP(ip.Payload())
	if !ok || icmp.Type() != nat.ICMPEchoRequest {
		w.drop(p, nat.DropUnsupported)
		return
	}
	src, dst := ip.Src(), ip.Dst()
	ip.SetSrc(dst)
	ip.SetDst(src)
	ip.SetTTL(64)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.ComputeChecksum())
	icmp.SetChecksum(nat.UpdateChecksum16(icmp.Checksum(), uint16(nat.ICMPEchoRequest)<<8, uint16(nat.ICMPEchoReply)<<8))
	icmp[0] = nat.ICMPEchoReply
	eth := nat.Ethernet(p.Data)
	eth.SetDst(eth.Src())
	eth.SetSrc(w.mac[p.Port])
	p.Data = p.Data[:nat.EthernetLen+len(ip)]
	w.queueTx(p.Port, p)
}

// glean offers an inside source's MAC to the management core the first
// time the worker sees the address (and when the cache slot was reused).
func (w *Worker) glean(src uint32, eth nat.Ethernet) {
	set := &w.gleaned[(src*2654435761)>>(32-gleanSetBits)]
	if set[0] == src || set[1] == src {
		return
	}
	set[1], set[0] = set[0], src // the older way goes
	if w.cl.n > 0 && w.cl.isPeer(eth.Src()) {
		return // redirected by a cluster peer: not the host's MAC
	}
	if _, ok := w.neigh.Load().Lookup(src); ok {
		return
	}
	var b [10]byte
	binary.BigEndian.PutUint32(b[:], src)
	copy(b[4:], eth.SrcMAC())
	m := Packet{Data: b[:], Flags: MsgGlean}
	w.toMgmt.Push(&m)
}

// The glean cache's geometry: 2^gleanSetBits sets of two addresses.
const (
	gleanSetBits = 12
	gleanSets    = 1 << gleanSetBits
)

// resetLen is the size of an encoded reset: three addresses, three ports,
// two acknowledgement numbers.
const resetLen = 26

// pushReset asks the management core to reset both ends of an idle flow.
func (w *Worker) pushReset(f *nat.Flow) {
	var b [resetLen]byte
	binary.BigEndian.PutUint32(b[0:], f.Priv)
	binary.BigEndian.PutUint32(b[4:], f.Pub)
	binary.BigEndian.PutUint32(b[8:], f.Remote)
	binary.BigEndian.PutUint16(b[12:], f.PrivPort)
	binary.BigEndian.PutUint16(b[14:], f.PubPort)
	binary.BigEndian.PutUint16(b[16:], f.RemotePort)
	binary.BigEndian.PutUint32(b[18:], f.AckPriv)
	binary.BigEndian.PutUint32(b[22:], f.AckRemote)
	m := Packet{Data: b[:], Flags: MsgReset}
	w.toMgmt.Push(&m)
}

func (w *Worker) resolve(addr uint32) {
	var b [nat.EthernetLen + 4]byte
	binary.BigEndian.PutUint32(b[:], addr)
	m := Packet{Data: b[:4], Flags: MsgResolve}
	w.toMgmt.Push(&m)
}

func (w *Worker) queueTx(port uint8, p *Packet) {
	w.tx[port][w.ntx[port]] = p
	w.ntx[port]++
	if w.ntx[port] == len(w.tx[port]) {
		w.flushPort(port)
	}
}

// flush transmits what is queued on both ports.
func (w *Worker) flush() {
	w.flushPort(PortInside)
	w.flushPort(PortOutside)
}

func (w *Worker) flushPort(port uint8) {
	n := w.ntx[port]
	if n == 0 {
		return
	}
	w.ntx[port] = 0
	pkts := w.tx[port][:n]
	sent := w.q[port].TxBurst(pkts)
	if sent < n {
		w.drops[nat.DropTxFull] += uint64(n - sent)
		w.q[port].Free(pkts[sent:])
	}
}

func (w *Worker) drop(p *Packet, v nat.Verdict) {
	w.drops[v]++
	w.free(p)
}

// free returns a packet's buffer; ring slots are released by their ring.
func (w *Worker) free(p *Packet) {
	if p.Pool != nil {
		p.Pool.Put(p)
	}
}

// publish copies the worker's counters to the published ones.
func (w *Worker) publish() {
	s := &w.tr.Stats
	c := &w.Counters
	for i := range c.Verdicts {
		c.Verdicts[i].Store(s.Verdicts[i] + w.drops[i])
	}
	for i := range c.Packets {
		c.Packets[i].Store(s.Packets[i])
		c.Bytes[i].Store(s.Bytes[i])
	}
	for i := range c.FlowsCreated {
		c.FlowsCreated[i].Store(s.FlowsCreated[i])
		c.FlowsActive[i].Store(s.FlowsActive[i])
	}
	for i := range c.FlowsExpired {
		c.FlowsExpired[i].Store(s.FlowsExpired[i])
	}
	c.FlowsDraining.Store(s.FlowsDraining)
	for i := range c.FlowsDrained {
		c.FlowsDrained[i].Store(s.Drained[i])
	}
	c.HandoffPackets.Store(w.local.handoff)
	c.Fragmented.Store(w.local.fragmented)
	c.Fragments.Store(w.local.fragments)
	w.publishFrags()
	inUse, counted := int64(0), false
	for _, q := range w.q {
		if bc, ok := q.(BufferCounter); ok {
			inUse += int64(bc.BuffersInUse())
			counted = true
		}
	}
	if !counted {
		inUse = -1
	}
	c.BuffersInUse.Store(inUse)
	c.RxPackets.Store(w.local.rx)
	c.Polls.Store(w.local.polls)
	c.BusyPolls.Store(w.local.busy)
	w.gaps.publish(c)
	c.Hot.store(w.tr.Hot())
	w.publishRejects()
	w.Counters.RedirectNoPeer.Store(w.cl.noPeer)
	w.publishExhausted()
}

// publishExhausted publishes the translator's exhaustion counts after a
// policy change and every 1024 polls. It stores into the counts the
// management core made with the running policy (nat.ExhaustedCounts)
// before it publishes their pointer, so a reader that loads it finds the
// counts and the generation that names them together; it allocates
// nothing.
func (w *Worker) publishExhausted() {
	c := &w.Counters
	if e := w.tr.ExhaustedCounts(); e != c.Exhausted.Load() || w.local.polls&1023 == 0 {
		c.Exhausted.Store(w.tr.PublishExhausted())
	}
}

func isFragment(l3 []byte) bool {
	return len(l3) >= nat.IPv4MinLen && nat.IPv4(l3).IsFragment()
}

// ipTotalLen returns the IPv4 total length field (0 if there is none).
func ipTotalLen(l3 []byte) int {
	if len(l3) < nat.IPv4MinLen {
		return 0
	}
	return nat.IPv4(l3).TotalLen()
}
