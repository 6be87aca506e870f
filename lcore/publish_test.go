package lcore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// TestPublishNoAllocs: the worker's publication of its counters allocates
// nothing, neither right after a policy change (the exhaustion counts are
// laid out for the new policy) nor at the 1024th poll (the periodic
// publication of the exhaustion counts), and what it publishes is the
// running policy's generation with the translator's counts.
func TestPublishNoAllocs(t *testing.T) {
	tb := newFakeGateway(t, 1)
	w := tb.rt.Workers[0]
	holder := tb.rt.cfg.Policy
	// Two policies with different numbers of pools, both stored (so
	// prepared for the worker) before the measurement; the holder holds
	// b, then a, then b...
	a := compileSpec(t, testSpec(), holder.Load())
	holder.Store(a)
	s := testSpec()
	fe2 := a4("198.19.1.11")
	s.Frontends = append(s.Frontends, fe2)
	s.Pools = append(s.Pools, nat.PoolSpec{Name: "mail", Frontends: []uint32{fe2}, Members: []uint32{a4("10.0.2.5")}})
	b := compileSpec(t, s, a)
	holder.Store(b)
	tb.poll()
	require.Same(t, b, w.Translator().Policy())

	next := []*nat.Policy{a, b}
	runs := 0
	allocs := testing.AllocsPerRun(4, func() {
		// The management core's part: a policy already prepared is
		// published by an atomic store, which allocates nothing.
		p := next[runs%2]
		runs++
		holder.Store(p)
		// The worker switches at its next poll and publishes the
		// counts of the new layout (an idle poll publishes).
		w.PollOnce()
		// A drop counted after the switch is published at the 1024th
		// poll.
		w.tr.Stats.Exhausted[0]++
		for {
			w.PollOnce()
			if w.local.polls&1023 == 0 {
				break
			}
		}
	})
	assert.Zero(t, allocs, "publish after a policy change and at the 1024th poll")

	pol := w.Translator().Policy()
	require.Same(t, next[(runs-1)%2], pol)
	e := w.Counters.Exhausted.Load()
	require.NotNil(t, e)
	assert.Equal(t, pol.Gen, e.Gen, "the generation of the running policy")
	require.Len(t, e.Counts, len(pol.Pools)+1, "laid out for the running policy")
	exh := w.Translator().Stats.Exhausted
	for i := range e.Counts {
		assert.Equal(t, exh[i], e.Counts[i].Load(), "scope %d", i)
	}
	// Pool web's count was carried over by name through every switch.
	assert.Equal(t, uint64(runs), e.Counts[0].Load())
}
