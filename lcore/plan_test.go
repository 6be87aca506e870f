package lcore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// plan runs Runtime.Plan while the test polls the workers.
func (tr *testRuntime) plan(t *testing.T, base, candidate *nat.Policy) (*Plan, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		p   *Plan
		err error
	}
	ch := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		p, err := tr.Plan(ctx, base, candidate)
		ch <- result{p, err}
		close(done)
	}()
	tr.pollUntil(t, done, 1000)
	r := <-ch
	return r.p, r.err
}

// reclaimed sums the flows the workers expired as reclaimed.
func (tr *testRuntime) reclaimed() uint64 {
	var n uint64
	for _, w := range tr.Workers {
		n += w.Translator().Stats.FlowsExpired[nat.ExpireReclaimed]
	}
	return n
}

// TestPlanQuery: the workers count the live flows a candidate policy
// would reclaim (a member's block halves), the policy is published, the
// workers sweep, and they reclaim exactly as many. The plan changes
// nothing before that.
func TestPlanQuery(t *testing.T) {
	tr := newTestRuntime(t, 2, 4*QueryChunk+100, 64, 4*time.Minute)
	for i := range 60 {
		tr.addFlow(t, qMember, qServer1, uint16(5000+i), 53)
	}
	for i := range 3 {
		tr.addFlow(t, qOther, qServer1, uint16(6000+i), 53)
	}
	base := tr.policy.Load()
	for _, w := range tr.Workers {
		w.PollOnce() // the workers run base
	}
	candidate := compileSpec(t, queryTestSpec(2, 32, 4*time.Minute), base)
	m, _ := candidate.Classify(qMember)

	p, err := tr.plan(t, base, candidate)
	require.NoError(t, err)
	assert.Equal(t, 63, p.Flows)
	assert.Zero(t, p.Sweeping)
	require.Len(t, p.Reclaimed, len(base.Pools)+2)
	assert.Positive(t, p.Reclaimed[0], "flows on the upper half of the 64-port block go")
	assert.Less(t, p.Reclaimed[0], 60, "flows on the lower half stay")
	assert.Zero(t, p.Reclaimed[1], "default SNAT is unchanged")
	assert.Zero(t, p.Reclaimed[2])
	assert.Len(t, p.Samples[0], PlanSamples)
	for _, f := range p.Samples[0] {
		assert.Equal(t, qMember, f.Private)
		assert.False(t, m.Block.Contains(f.PublicPort), "a sampled flow holds a port outside the new block")
	}
	assert.Zero(t, tr.reclaimed(), "the plan reclaims nothing")

	tr.policy.Store(candidate)
	for range 100 {
		for _, w := range tr.Workers {
			w.PollOnce()
		}
	}
	assert.Equal(t, uint64(p.Reclaimed[0]), tr.reclaimed(), "the reload reclaims what the plan counted")

	// A plan against a policy the workers no longer run is refused.
	_, err = tr.plan(t, base, candidate)
	assert.ErrorIs(t, err, ErrPolicyChanged)
}

// TestPlanQueryNoAllocs: serving a plan query costs the worker no
// allocation (the sample buffers are the query's own).
func TestPlanQueryNoAllocs(t *testing.T) {
	tr := newTestRuntime(t, 1, 1<<20, 1024, 4*time.Minute)
	w := tr.Workers[0]
	for i := range 100 {
		tr.addFlow(t, qMember, qServer1, uint16(5000+i), 53)
	}
	w.PollOnce() // runs the policy, starts a scan pass (allocates its buffers)
	base := tr.policy.Load()
	q := NewPlanQuery(base, compileSpec(t, queryTestSpec(1, 512, 4*time.Minute), base))
	require.True(t, w.qs.slot.CompareAndSwap(nil, q))
	assert.Zero(t, testing.AllocsPerRun(50, func() { w.serveQueries(tr.clock.Now()) }), "plan query chunk")
	assert.Equal(t, 100, q.Count)
	assert.Positive(t, q.Reclaimed[0])
}
