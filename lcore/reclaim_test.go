package lcore

import (
	"testing"
	"time"

	"github.com/natgw/natgw/nat"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIdleReclaimMillion checks idle reclamation at scale [S5]: a million
// idle UDP flows on one worker are all released within a few seconds of
// their timeout, with each poll doing a bounded amount of expiry work.
//
// The clock is the test's: each poll advances it by 1 ms, the slowest a
// worker polls (an idle AF_PACKET worker sleeps up to 1 ms; DPDK workers
// spin), and the management core's ExpireNow follows it as its loop does.
// So the reclamation delay is measured in dataplane time and the test is
// deterministic. The longest wall-clock PollOnce is logged, not asserted.
func TestIdleReclaimMillion(t *testing.T) {
	flows := 1_000_000
	if raceEnabled || testing.Short() {
		flows = 100_000
	}
	const perDest = 512 // of the qMember's 1024 ports
	tr := newTestRuntime(t, 1, flows+1000, 1024, 2*time.Minute)
	w := tr.Workers[0]
	for i := range flows {
		tr.addFlow(t, qMember, qServer1+uint32(i/perDest), uint16(10000+i%perDest), 53)
	}
	st := &w.Translator().Stats
	require.Equal(t, uint64(flows), st.FlowsActive[nat.ProtoIndex(nat.ProtoUDP)])
	timeout := 2 * time.Minute

	poll := func() (expired uint64, took time.Duration) {
		tr.clock.Advance(time.Millisecond)
		tr.Manager.ExpireNow.Store(uint64(tr.clock.Now()))
		before := st.FlowsExpired[nat.ExpireIdle]
		start := time.Now()
		w.PollOnce()
		return st.FlowsExpired[nat.ExpireIdle] - before, time.Since(start)
	}

	// Just before the timeout nothing goes.
	tr.clock.Advance(timeout - time.Second)
	for range 100 {
		n, _ := poll()
		require.Zero(t, n)
	}
	tr.clock.Advance(time.Second - 100*time.Millisecond)

	var longest time.Duration
	polls, over := 0, 0
	for st.FlowsActive[nat.ProtoIndex(nat.ProtoUDP)] > 0 {
		n, took := poll()
		polls++
		longest = max(longest, took)
		if took > time.Millisecond {
			over++
		}
		require.LessOrEqual(t, n, uint64(256), "expiry work per poll is bounded")
		require.Less(t, polls, 20_000, "flows still active after %d polls", polls)
	}
	late := time.Duration(polls) * time.Millisecond
	t.Logf("%d flows reclaimed %v after their timeout (%d polls); longest PollOnce %v, %d polls over 1 ms (wall clock: includes GC and preemption on a shared machine)",
		flows, late, polls, longest, over)
	assert.LessOrEqual(t, late, 5*time.Second)
	assert.Equal(t, uint64(flows), st.FlowsExpired[nat.ExpireIdle])
	assert.Zero(t, w.Translator().Usage().Len(), "every port is free again")
	assert.Zero(t, w.Translator().Flows().Len())
}
