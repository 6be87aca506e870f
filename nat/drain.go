package nat

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/natgw/natgw/portalloc"
)

// Draining flows (issue 19: make-before-break reclaim and draining a
// public address). When a reload takes a flow's port from its member (a
// pool's tier step up shrinks the member's block, or the block moves off
// a frontend set to drain) the flow can be kept instead of reclaimed: it
// is marked draining and lives until it closes, idles out or its drain
// deadline passes, when it is reclaimed and counted as reclaimed as
// before. Its public 5-tuple stays in the in index, so the port's new
// owner may already take the port towards any other destination (the
// uniqueness check of every new flow keeps it off this one).
//
// A draining flow no longer counts in its member's port usage (it holds a
// port outside the member's block, like a port of another member), so
// the member's exhaustion check and utilisation see its block alone. All
// of it is decided on revalidation, which runs on a generation change
// only: packets of a draining flow take the established path unchanged.
// Deadlines are enforced by ExpireDrained, which the worker calls every
// poll and which costs one comparison while no deadline is due.

// flagDraining marks a draining flow (Flow.Flags). It is the bit
// tcpstate.go reserves for the translator's reclaim, which TCPTransition
// preserves.
const flagDraining = FlagReclaim

// DrainSpec describes what a reload does with flows whose ports it takes
// from their member (issue 19).
type DrainSpec struct {
	// Reclaim drains such flows instead of reclaiming them at once
	// ([reload] reclaim = "drain").
	Reclaim bool
	// Deadline is how long a flow may drain, counted from the moment the
	// worker took the policy that made it drain (reload.reclaim_deadline).
	Deadline Tick
	// Frontends are frontend addresses set to drain: no new flow takes a
	// port on them (their pools lay their members' blocks out on the other
	// frontends where room allows), and flows on them drain whatever
	// Reclaim says.
	Frontends []uint32
	// Instances are instance public addresses set to drain: the instance
	// opens no new flow (new outbound flows of its private address take
	// its next scenario, a pool or default SNAT; new inbound flows are
	// dropped as no_flow) and its flows drain, outbound and inbound.
	Instances []uint32
}

// drainPolicy is the compiled DrainSpec.
type drainPolicy struct {
	reclaim   bool
	deadline  Tick
	frontends map[uint32]bool
	instances map[uint32]bool // by public address
	// draining are the instances set to drain, by private address: out
	// of the policy's classification, still its instances (Instances).
	draining map[uint32]*Instance
}

func compileDrain(d DrainSpec) drainPolicy {
	dp := drainPolicy{reclaim: d.Reclaim, deadline: d.Deadline}
	if len(d.Frontends) > 0 {
		dp.frontends = make(map[uint32]bool, len(d.Frontends))
		for _, a := range d.Frontends {
			dp.frontends[a] = true
		}
	}
	if len(d.Instances) > 0 {
		dp.instances = make(map[uint32]bool, len(d.Instances))
		for _, a := range d.Instances {
			dp.instances[a] = true
		}
	}
	return dp
}

// drainInstances takes the instances set to drain out of the
// classification (Classify no longer finds them; IsPublic and
// InstanceByPublic still do, so natgw answers for the address and its
// flows go on).
func (p *Policy) drainInstances() {
	for pub := range p.drain.instances {
		in, ok := p.publics[pub]
		if !ok {
			continue
		}
		delete(p.instances, in.Private)
		if p.drain.draining == nil {
			p.drain.draining = make(map[uint32]*Instance)
		}
		p.drain.draining[in.Private] = in
	}
}

// InstanceDraining reports whether instance public address a is set to
// drain.
func (p *Policy) InstanceDraining(a uint32) bool { return p.drain.instances[a] }

// ReclaimDrains reports whether the policy drains the flows a reload
// takes ports from ([reload] reclaim = "drain").
func (p *Policy) ReclaimDrains() bool { return p.drain.reclaim }

// DrainDeadline returns how long a flow may drain under the policy.
func (p *Policy) DrainDeadline() Tick { return p.drain.deadline }

// FrontendDraining reports whether frontend address a is set to drain.
func (p *Policy) FrontendDraining(a uint32) bool { return p.drain.frontends[a] }

// DrainingFrontends returns the frontend addresses set to drain, sorted.
func (p *Policy) DrainingFrontends() []uint32 {
	out := make([]uint32, 0, len(p.drain.frontends))
	for a := range p.drain.frontends {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Drains reports whether flow f, which p does not keep (Keeps), would
// drain rather than be reclaimed when p is published: f is an outbound
// pool flow (or one already draining), its
// public address is still one of natgw's, no deny rule blocks its
// destination, and either p drains reclaimed flows or f's public address
// is set to drain. Like Keeps it changes nothing (natgw plan asks it of
// a candidate policy), and revalidation decides with it.
func (p *Policy) Drains(f *Flow) bool {
	if p.Keeps(f) {
		return false
	}
	return p.drains(f)
}

// drains is Drains for a flow keeps already refused.
func (p *Policy) drains(f *Flow) bool {
	if f.Scope == ScopeInstance || f.Flags&flagInbound != 0 {
		// An instance's flows drain when its address does, and only then.
		if !p.drain.instances[f.Pub] || p.publics[f.Pub] == nil {
			return false
		}
		return f.Flags&flagInbound != 0 || !p.Denied(f.Remote, f.Proto, f.RemotePort)
	}
	if !p.drain.reclaim && !p.drain.frontends[f.Pub] {
		return false
	}
	// Pool flows drain; default-SNAT flows are reclaimed as before
	// (docs/OPERATIONS.md, "Reloads").
	if f.Flags&flagDraining == 0 && f.Scope == ScopeDefault {
		return false
	}
	if !p.frontends[f.Pub] {
		return false // natgw no longer answers for the address
	}
	// A flow that holds, or under p would hold, an endpoint-independent
	// mapping is reclaimed: draining it would leave its private
	// endpoint's mapping on a port its member no longer owns.
	if m, _ := p.Classify(f.Priv); f.Flags&flagEIM != 0 || (eimProto(f.Proto) && p.eimScope(m.Scope)) {
		return false
	}
	return !p.Denied(f.Remote, f.Proto, f.RemotePort)
}

// DrainOutcome says how a draining flow ended (the outcome label of
// natgw_flows_drained_total).
type DrainOutcome uint8

// Drain outcomes.
const (
	// DrainClosed: the flow closed (FINs both ways or a RST, then the
	// closing linger).
	DrainClosed DrainOutcome = iota
	// DrainIdle: the flow idled out.
	DrainIdle
	// DrainDeadline: the drain deadline passed and the flow was reclaimed.
	DrainDeadline
	// DrainReclaimed: a later reload reclaimed the flow before its
	// deadline (its address removed, its destination denied, or a reload
	// with reclaim = "immediate").
	DrainReclaimed
	// NumDrainOutcomes is the number of outcomes, for arrays of counters.
	NumDrainOutcomes
)

var drainOutcomeNames = [NumDrainOutcomes]string{"closed", "idle", "deadline", "reclaimed"}

// String returns the metric label of o. It is not for the packet path.
func (o DrainOutcome) String() string {
	if o < NumDrainOutcomes {
		return drainOutcomeNames[o]
	}
	return "unknown"
}

// drainEpoch is the deadline shared by the flows that started draining
// under one policy, and how many of this worker's flows it holds.
type drainEpoch struct {
	deadline Tick
	flows    int
}

// maxDrainEpochs bounds the drain epochs a worker's flows can be in at
// once (Flow.drain is a byte; entry 0 means "none").
const maxDrainEpochs = 256

// drainState is a translator's drain bookkeeping.
type drainState struct {
	epochs [maxDrainEpochs]drainEpoch
	// cur is the epoch of the running policy (0 until a flow drains
	// under it), curGen the generation it was made for.
	cur    uint8
	curGen uint32
	// polAt is when the translator took the running policy; clock the
	// last time ExpireDrained or Expire was given.
	polAt, clock Tick
	// next is the earliest deadline of a live epoch; scanning says a
	// deadline pass over the table is under way at cursor.
	next     Tick
	scanning bool
	cursor   uint32
	// atDeadline says ExpireDrained is reclaiming: a reclaimed draining
	// flow is counted as DrainDeadline, else as DrainReclaimed.
	atDeadline bool
}

// epoch returns the running policy's drain epoch, making it if needed.
func (t *Translator) epoch() uint8 {
	d := &t.drain
	if d.cur != 0 && d.curGen == t.pol.Gen {
		return d.cur
	}
	dl := d.polAt + t.pol.drain.deadline
	free, latest := 0, 0
	for i := 1; i < maxDrainEpochs; i++ {
		e := &d.epochs[i]
		if e.flows <= 0 {
			if free == 0 {
				free = i
			}
			continue
		}
		if latest == 0 || int32(e.deadline-d.epochs[latest].deadline) > 0 {
			latest = i
		}
	}
	if free == 0 {
		// 255 epochs with live flows: join the one ending last.
		return uint8(latest)
	}
	d.epochs[free] = drainEpoch{deadline: dl}
	d.cur, d.curGen = uint8(free), t.pol.Gen
	if t.Stats.FlowsDraining == 0 || int32(dl-d.next) < 0 {
		d.next = dl
	}
	return d.cur
}

// startDrain marks a flow the running policy does not keep as draining:
// it leaves its member's port usage and joins the running epoch.
func (t *Translator) startDrain(f *Flow) {
	if f.Flags&flagDraining != 0 {
		return // already draining: it keeps its deadline
	}
	if f.Scope != ScopeInstance {
		uk := usageKey(f)
		t.hot.Released(uk, t.usage.Dec(uk))
	}
	e := t.epoch()
	d := &t.drain
	if int32(d.epochs[e].deadline-d.next) < 0 || t.Stats.FlowsDraining == 0 {
		d.next = d.epochs[e].deadline
	}
	d.epochs[e].flows++
	f.drain = e
	f.Flags |= flagDraining
	t.Stats.FlowsDraining++
}

// leaveDrain takes a flow out of its drain epoch.
func (t *Translator) leaveDrain(f *Flow) {
	t.drain.epochs[f.drain].flows--
	f.drain = 0
	f.Flags &^= flagDraining
	t.Stats.FlowsDraining--
}

// resumeDrained brings a draining flow that the running policy keeps
// again (its member's block holds its port once more) back into its
// member's port usage, counted under its current Scope; revalidate then
// treats it as any flow it keeps. It reports false when the usage table
// is full: the flow is then reclaimed.
func (t *Translator) resumeDrained(f *Flow, m *Mapping) bool {
	if f.Scope != ScopeInstance {
		uk := usageKey(f)
		n, ok := t.usage.Inc(uk)
		if !ok {
			return false
		}
		t.hot.Created(uk, n, m.Block.Size(), f.Scope)
	}
	t.leaveDrain(f)
	return true
}

// endDrain counts a draining flow that leaves the table with reason r.
func (t *Translator) endDrain(f *Flow, r ExpireReason) {
	o := DrainIdle
	switch r {
	case ExpireClosed, ExpireReset:
		o = DrainClosed
	case ExpireReclaimed:
		o = DrainReclaimed
		if t.drain.atDeadline {
			o = DrainDeadline
		}
	}
	t.Stats.Drained[o]++
	t.leaveDrain(f)
}

// ExpireDrained reclaims draining flows whose deadline has passed at now,
// examining at most budget flow slots; it reports whether it is done for
// now. While no deadline is due it costs one comparison; the worker calls
// it every poll, never on the packet path.
func (t *Translator) ExpireDrained(now Tick, budget int) (done bool) {
	d := &t.drain
	d.clock = now
	if !d.scanning {
		if t.Stats.FlowsDraining == 0 || int32(now-d.next) < 0 {
			return true
		}
		d.scanning, d.cursor = true, 0
	}
	c := uint32(t.flows.Capacity())
	for ; budget > 0; budget-- {
		d.cursor++
		if d.cursor > c {
			d.scanning = false
			d.next = t.nextDrainDeadline()
			return true
		}
		f := t.flows.Flow(d.cursor)
		if f.State == StateFree || f.Flags&flagDraining == 0 {
			continue
		}
		// A flow of an older generation is checked against the running
		// policy first: it may keep the flow again (or end it now).
		if f.Gen != t.pol.Gen && !t.revalidate(d.cursor, f) || f.Flags&flagDraining == 0 ||
			int32(now-d.epochs[f.drain].deadline) < 0 {
			continue
		}
		d.atDeadline = true
		t.release(d.cursor, f, ExpireReclaimed)
		d.atDeadline = false
	}
	return false
}

// nextDrainDeadline returns the earliest deadline of an epoch with flows.
func (t *Translator) nextDrainDeadline() Tick {
	var next Tick
	found := false
	for i := 1; i < maxDrainEpochs; i++ {
		e := &t.drain.epochs[i]
		if e.flows > 0 && (!found || int32(e.deadline-next) < 0) {
			next, found = e.deadline, true
		}
	}
	return next
}

// usageKey is the port usage key of a flow.
func usageKey(f *Flow) portalloc.Key {
	return portalloc.Key{Private: f.Priv, Remote: f.Remote, RemotePort: f.RemotePort, Proto: f.Proto}
}

// BlockOnDraining is a pool member whose block a policy still lays out on
// a frontend set to drain, for lack of room on its pool's other
// frontends: its new flows still take ports there.
type BlockOnDraining struct {
	Pool   string
	Member netip.Addr
	Block  portalloc.Block
}

// BlocksOnDraining lists, sorted by frontend address and member, the pool
// members whose blocks lie on a frontend set to drain (natgw validate and
// natgw plan report them).
func (p *Policy) BlocksOnDraining() []BlockOnDraining {
	var out []BlockOnDraining
	for a, m := range p.members {
		if p.drain.frontends[m.block.Public] {
			out = append(out, BlockOnDraining{Pool: p.PoolName(m.pool), Member: AddrFrom(a), Block: m.block})
		}
	}
	slices.SortFunc(out, func(a, b BlockOnDraining) int {
		if c := cmp.Compare(a.Block.Public, b.Block.Public); c != 0 {
			return c
		}
		return a.Member.Compare(b.Member)
	})
	return out
}
