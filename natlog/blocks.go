package natlog

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/natgw/natgw/nat"
	"github.com/natgw/natgw/portalloc"
)

// This file is the source of block events: which private address holds
// which ports of which public address, and since when. It runs on the
// management core, on the Tracker's own goroutine; sinks are called from
// that goroutine only, one event at a time, in time order.
//
// Where the events come from:
//
//   - Pool blocks and instance mappings are in the compiled policy. The
//     Tracker is told of every policy published (Tracker.Policy, at
//     start and after each reload) and compares the ranges held under
//     it with those held under the previous one: a range no longer held
//     is released, a new one assigned, both dated by the publication and
//     stamped with the new generation. A pool member's grace block (the
//     ports of its previous, smaller block its flows keep after a tier
//     step down, [S7]) is a range it holds, so it is released only when
//     the grace ends.
//   - Default-SNAT blocks are assigned by workers, lock-free, on first
//     use (portalloc.DefaultSNAT) and freed by the management core's
//     reclamation. Workers do nothing for the log: the allocator dates
//     each slot's change and counts changes, and the Tracker, every
//     Interval, loads that count and scans the address table only when
//     it moved. Events carry the allocator's dates, so they are exact
//     however late the scan runs.
//
// At start (generation 1) everything in force is assigned; a clean stop
// (Close) releases everything. After a crash nothing is released: the
// next start's generation 1 says that earlier holdings ended.

// DefaultInterval is how often a Tracker looks for default-SNAT changes.
const DefaultInterval = 50 * time.Millisecond

// TrackerOptions configure a Tracker.
type TrackerOptions struct {
	// Sink receives the events (Fanout for several).
	Sink BlockSink
	// Interval is how often Run looks for default-SNAT changes
	// (DefaultInterval when 0).
	Interval time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// holdKey is one range held under a policy.
type holdKey struct {
	scope       Scope
	name        string
	private     uint32
	public      uint32
	first, last uint16
}

// dsHold is what a default-SNAT slot held at the last scan.
type dsHold struct {
	private uint32
	index   int
	block   portalloc.Block
}

type publication struct {
	p  *nat.Policy
	at time.Time
}

// Tracker turns policies and default-SNAT assignments into block events.
//
// Threading: Policy may be called from any goroutine (the reload path).
// Either Start runs the Tracker on its own goroutine, where sinks are
// called, or the caller calls Step itself (tests), never both; Close
// once, after which the Tracker is done.
type Tracker struct {
	o TrackerOptions

	mu      sync.Mutex
	pending []publication
	wake    chan struct{}

	gen    uint64
	held   map[holdKey]bool
	ds     *portalloc.DefaultSNAT
	dsSeen uint64
	dsHeld map[int]dsHold
	out    []BlockEvent

	started bool
	stop    chan struct{}
	done    chan struct{}
}

// NewTracker returns a Tracker that holds nothing yet.
func NewTracker(o TrackerOptions) *Tracker {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sink == nil {
		o.Sink = Fanout(nil)
	}
	return &Tracker{
		o: o, wake: make(chan struct{}, 1), held: map[holdKey]bool{}, dsHeld: map[int]dsHold{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Policy tells the Tracker that p was just published. Call it for the
// first policy and after every reload, in publication order; the events
// it causes are dated now and delivered by the next Step.
func (t *Tracker) Policy(p *nat.Policy) {
	t.mu.Lock()
	t.pending = append(t.pending, publication{p: p, at: t.o.Now()})
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Start runs Step on its own goroutine every Interval, and at once after
// Policy, until Close.
func (t *Tracker) Start() {
	t.started = true
	go t.run()
}

func (t *Tracker) run() {
	defer close(t.done)
	tick := time.NewTicker(t.o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		case <-t.wake:
		}
		t.Step()
	}
}

// Close stops the goroutine Start began, delivers what is pending and
// releases every range held, dated now: natgw no longer translates for
// anyone. Call it once.
func (t *Tracker) Close() {
	close(t.stop)
	if t.started {
		<-t.done
	}
	t.Step()
	now := t.o.Now()
	for k := range t.held {
		t.out = append(t.out, t.holdEvent(BlockReleased, k, now))
	}
	clear(t.held)
	for _, h := range t.dsHeld {
		t.out = append(t.out, t.dsEvent(BlockReleased, h, now))
	}
	clear(t.dsHeld)
	t.flush()
}

// Step delivers the events of the policies published since the last Step
// and of the default-SNAT changes since the last scan.
func (t *Tracker) Step() {
	t.mu.Lock()
	pubs := t.pending
	t.pending = nil
	t.mu.Unlock()
	for _, pub := range pubs {
		t.scanDefault(t.o.Now()) // changes before the publication first
		t.flush()
		t.applyPolicy(pub)
		t.flush()
	}
	t.scanDefault(t.o.Now())
	t.flush()
}

// applyPolicy compares the ranges held under p with those held before.
func (t *Tracker) applyPolicy(pub publication) {
	p := pub.p
	t.gen = uint64(p.Gen)
	now := map[holdKey]bool{}
	for i, pool := range p.Pools {
		for _, a := range pool.Members {
			priv := nat.U32(a)
			m, v := p.Classify(priv)
			if v != nat.VerdictForward || m.Scenario != nat.ScenarioPool || int(m.Scope) != i {
				continue
			}
			for _, b := range []portalloc.Block{m.Block, m.Grace} {
				if b.Public != 0 {
					now[holdKey{ScopePool, pool.Name, priv, b.Public, b.First, b.Last}] = true
				}
			}
		}
	}
	if p.Config != nil {
		for _, in := range p.Config.Instances {
			priv, err1 := netip.ParseAddr(in.Private)
			pub, err2 := netip.ParseAddr(in.Public)
			if err1 != nil || err2 != nil {
				continue // Compile refused such a policy
			}
			now[holdKey{ScopeInstance, "", nat.U32(priv), nat.U32(pub), 0, 0xFFFF}] = true
		}
	}
	for k := range t.held {
		if !now[k] {
			t.out = append(t.out, t.holdEvent(BlockReleased, k, pub.at))
		}
	}
	for k := range now {
		if !t.held[k] {
			t.out = append(t.out, t.holdEvent(BlockAssigned, k, pub.at))
		}
	}
	t.held = now

	if d := p.DefaultSNAT(); d != t.ds {
		// A new allocator (default_snat changed or went): the old one
		// hands out nothing more; flows kept across the reload take
		// their block again from the new one, which the scan reports.
		for _, h := range t.dsHeld {
			t.out = append(t.out, t.dsEvent(BlockReleased, h, pub.at))
		}
		clear(t.dsHeld)
		t.ds, t.dsSeen = d, 0
		if d != nil {
			t.dsSeen = d.Changes() - 1 // scan it now
		}
	}
}

// scanDefault reports the default-SNAT assignments and reclamations since
// the last scan.
func (t *Tracker) scanDefault(now time.Time) {
	d := t.ds
	if d == nil {
		return
	}
	c := d.Changes()
	if c == t.dsSeen {
		return
	}
	t.dsSeen = c
	at := func(ns int64) time.Time {
		if ns <= 0 || ns > now.UnixNano() {
			return now
		}
		return time.Unix(0, ns)
	}
	d.ScanHoldings(func(h portalloc.Holding) {
		old, had := t.dsHeld[h.Slot]
		if had && old.index == h.Index {
			return
		}
		when := at(h.Changed)
		if had {
			t.out = append(t.out, t.dsEvent(BlockReleased, old, when))
			delete(t.dsHeld, h.Slot)
		}
		if h.Index >= 0 {
			nh := dsHold{private: h.Private, index: h.Index, block: h.Block}
			t.dsHeld[h.Slot] = nh
			t.out = append(t.out, t.dsEvent(BlockAssigned, nh, when))
		}
	})
}

func (t *Tracker) holdEvent(kind BlockKind, k holdKey, at time.Time) BlockEvent {
	return BlockEvent{Time: at, Kind: kind, Scope: k.scope, Name: k.name, Private: k.private,
		Public: k.public, First: k.first, Last: k.last, Generation: t.gen}
}

func (t *Tracker) dsEvent(kind BlockKind, h dsHold, at time.Time) BlockEvent {
	return BlockEvent{Time: at, Kind: kind, Scope: ScopeDefaultSNAT, Private: h.private,
		Public: h.block.Public, First: h.block.First, Last: h.block.Last, Generation: t.gen}
}

// flush delivers the collected events in time order, releases before
// assignments at the same time (a block that changed hands is released
// by one address before the other gets it), then by address and range so
// the order is the same every run.
func (t *Tracker) flush() {
	slices.SortFunc(t.out, func(a, b BlockEvent) int {
		return cmp.Or(a.Time.Compare(b.Time), -cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Scope, b.Scope),
			cmp.Compare(a.Private, b.Private), cmp.Compare(a.Public, b.Public), cmp.Compare(a.First, b.First))
	})
	for _, ev := range t.out {
		t.o.Sink.Block(ev)
	}
	t.out = t.out[:0]
}

// Fanout is a BlockSink that hands each event to every sink in turn.
type Fanout []BlockSink

// Block delivers ev to each sink.
func (f Fanout) Block(ev BlockEvent) {
	for _, s := range f {
		s.Block(ev)
	}
}
