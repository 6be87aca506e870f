package nat

// What the management core makes ready for a worker before it publishes a
// policy, so that the worker's switch to the policy (SetPolicyAt) and its
// publication of the counters allocate nothing: the policy's per-scope
// exhaustion counters, their published form (exhausted.go) and, for the
// first policy with an endpoint-independent scope, the translator's
// mapping table (eim.go), sized like the flow table, a large allocation.
//
// Ownership: PolicyHolder.Store runs on the management core. Before it
// publishes a policy it fills the policy's ready list, one entry per
// translator attached to the holder (Attach); the atomic store of the
// policy publishes the list with it, and nobody writes it after that. The
// worker reads its entry when it switches to the policy and takes what it
// holds. A translator's eimGiven is the management core's alone (Attach
// and Store, under the holder's lock; NewTranslator before that).

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// prepared is what translator tr takes when it switches to the policy
// whose ready list holds it.
type prepared struct {
	tr *Translator
	// exhausted is the policy's Stats.Exhausted, zero: one counter per
	// pool and one for default SNAT.
	exhausted []uint64
	// published is where the worker publishes exhausted for the
	// management core (ExhaustedCounts, exhausted.go).
	published *ExhaustedCounts
	// eim is the translator's mapping table once it needs one (the
	// worker takes it when it has none yet), nil before.
	eim *eimTable
}

// readyFor returns what the management core prepared for t's switch to
// p, or nil: p was not published through a holder t is attached to (a
// test's SetPolicy, the policy a translator is built with).
func (p *Policy) readyFor(t *Translator) *prepared {
	if i := t.slot; i >= 0 && i < len(p.ready) && p.ready[i].tr == t {
		return &p.ready[i]
	}
	return nil
}

// prepare returns what t takes when it switches to p. It allocates; it
// runs on the management core (Store, NewTranslator), or on the worker
// for a policy nobody prepared (readyFor).
func (t *Translator) prepare(p *Policy, eim *eimTable) prepared {
	r := prepared{tr: t, exhausted: make([]uint64, len(p.Pools)+1), published: newExhaustedCounts(p), eim: eim}
	if r.eim == nil && p.eim {
		r.eim = t.newEIMTable()
	}
	return r
}

// newEIMTable returns an empty mapping table of t's mapping capacity
// (TranslatorOptions.MappingCapacity, else the flow capacity).
func (t *Translator) newEIMTable() *eimTable {
	c := t.eimCap
	if c <= 0 {
		c = t.flowCap
	}
	return newEIMTable(c, [4]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()})
}

// PolicyHolder publishes the running policy to workers: the management core
// stores, workers load between bursts. Load is one atomic load; Store and
// Attach take a lock, which only the management core does.
type PolicyHolder struct {
	p        atomic.Pointer[Policy]
	mu       sync.Mutex
	attached []*Translator
}

// Load returns the running policy (nil before the first Store).
func (h *PolicyHolder) Load() *Policy { return h.p.Load() }

// Store publishes a new policy. First it prepares, for every attached
// translator, what the translator's switch to p needs (see prepare.go),
// unless p was stored before (a policy's ready list is never written once
// published).
func (h *PolicyHolder) Store(p *Policy) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p != nil && p.ready == nil && len(h.attached) > 0 {
		p.ready = make([]prepared, len(h.attached))
		for i, t := range h.attached {
			p.ready[i] = t.prepare(p, t.eimGiven)
			t.eimGiven = p.ready[i].eim
		}
	}
	h.p.Store(p)
}

// Attach makes Store prepare t for every policy it publishes from now on,
// so that t's switches to them allocate nothing. Call it on the
// management core, before t's worker starts; a translator is attached to
// one holder, for good.
func (h *PolicyHolder) Attach(t *Translator) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.slot >= 0 {
		panic("nat: PolicyHolder.Attach: translator already attached")
	}
	t.slot = len(h.attached)
	h.attached = append(h.attached, t)
}
