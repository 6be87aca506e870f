package nat

// How a worker publishes its port_exhausted counts by scope
// (Stats.Exhausted) to the management core without allocating. The
// layout of the counts is the running policy's (its pools, then default
// SNAT), so their published form is made with the policy, on the
// management core: PolicyHolder.Store prepares one ExhaustedCounts per
// policy and attached translator (prepare.go), the worker takes it when
// it switches to the policy and, from then on, only stores into it.
//
// Ownership: an ExhaustedCounts' Gen and the length of its Counts never
// change once it is made; the worker running the translator alone stores
// into Counts (PublishExhausted), with atomic stores; the runtime
// publishes the pointer by atomic store (lcore.WorkerCounters.Exhausted),
// so a reader that loads it finds the generation that names the counts
// together with them.

import "sync/atomic"

// ExhaustedCounts are a translator's port_exhausted drops by scope under
// one policy, as the worker last published them.
type ExhaustedCounts struct {
	// Gen is the generation of the policy whose scopes index Counts.
	Gen uint32
	// Counts[i] is Stats.Exhausted[i] when last published: pool i of
	// the policy, the last entry default SNAT.
	Counts []atomic.Uint64
}

// newExhaustedCounts returns zero counts laid out for p. It allocates: it
// runs where prepare does.
func newExhaustedCounts(p *Policy) *ExhaustedCounts {
	return &ExhaustedCounts{Gen: p.Gen, Counts: make([]atomic.Uint64, len(p.Pools)+1)}
}

// ExhaustedCounts returns where the translator publishes Stats.Exhausted
// under the running policy (PublishExhausted).
func (t *Translator) ExhaustedCounts() *ExhaustedCounts { return t.exhPub }

// PublishExhausted stores Stats.Exhausted into the running policy's
// ExhaustedCounts and returns them. It allocates nothing; call it from
// the worker, between bursts.
func (t *Translator) PublishExhausted() *ExhaustedCounts {
	e := t.exhPub
	// Both are laid out for the running policy (SetPolicyAt).
	for i, v := range t.Stats.Exhausted[:len(e.Counts)] {
		e.Counts[i].Store(v)
	}
	return e
}
