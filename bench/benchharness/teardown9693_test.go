package main

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

func TestFirstFlows(t *testing.T) {
	tr, err := newTraffic(1000)
	require.NoError(t, err)
	g, err := newGenFlows(tr, 7)
	require.NoError(t, err)
	assert.Equal(t, g, g.firstFlows(1000), "all the flows: the full order, so traffic is unchanged")
	for _, k := range []uint32{1, 2, 3, 499, 500, 999} {
		o := g.firstFlows(k)
		seen := make([]bool, k)
		cur := o.at(0)
		for j := uint64(0); j < uint64(k); j++ {
			require.Equal(t, o.at(j), cur, "k %d: next follows at", k)
			require.Less(t, cur, k, "k %d: only the first k flows", k)
			require.False(t, seen[cur], "k %d: flow %d twice in a cycle", k, cur)
			seen[cur] = true
			cur = o.next(cur)
		}
		assert.Equal(t, o.at(0), cur, "k %d: the cycle closes after k flows", k)
		assert.Equal(t, g.flow(3), o.flow(3), "a flow is the same flow in either order")
	}
}

func TestEngineTrafficFlows(t *testing.T) {
	e, n := newTestEngine(t, 2000, 8192)
	require.True(t, e.connect(2_000_000).pass())
	var maxFlow uint32
	got := make(map[uint32]int)
	inner := e.q.InTx.(fakeQueue)
	e.q.InTx = fakeQueue{tx: func(f []byte) bool {
		var p genPacket
		if parseGenFrame(f, &p) == nil {
			maxFlow = max(maxFlow, p.Flow)
			got[p.Flow]++
		}
		return inner.tx(f)
	}}
	r, err := e.trafficFlows(2_000_000, 10*time.Millisecond, 300)
	require.NoError(t, err)
	assert.True(t, r.pass(), "%+v", r)
	assert.Less(t, maxFlow, uint32(300), "no frame for a flow at or beyond k")
	assert.Len(t, got, 300, "10 ms at 1 Mpps each way cycles over all 300 flows")
	assert.Equal(t, r.Out.Received+r.In.Received, e.hist.total)
	assert.Len(t, n.rev, 2000, "no flow created")

	for _, k := range []uint32{0, 2001} {
		_, err := e.trafficFlows(1_000_000, time.Millisecond, k)
		assert.ErrorIs(t, err, errLoadFlows, "k %d", k)
	}
}

func TestEngineConnectFlows(t *testing.T) {
	e, n := newTestEngine(t, 1000, 4096)
	c := e.connectFlows(1_000_000, 400, 1000)
	assert.True(t, c.pass(), "%+v", c)
	assert.Equal(t, uint64(600), c.Flows, "only the flows [400, 1000)")
	assert.Len(t, n.rev, 600)
	assert.Equal(t, 600, e.learnt())
	c = e.connectFlows(1_000_000, 0, 400)
	assert.True(t, c.pass(), "%+v", c)
	assert.Equal(t, uint64(400), c.Flows)
	assert.Len(t, n.rev, 1000, "each flow opened once")
	require.NoError(t, e.checkLearnt(), "what the first call learnt is kept")
	r, err := e.trafficFlows(1_000_000, 5*time.Millisecond, 1000)
	require.NoError(t, err)
	assert.True(t, r.pass(), "every flow's public endpoint is right: %+v", r)
}

func TestTeardownSplitAndBasis(t *testing.T) {
	k, m := teardownSplit(1_000_000)
	assert.Equal(t, [2]uint32{500_000, 500_000}, [2]uint32{k, m})
	k, m = teardownSplit(1001)
	assert.Equal(t, [2]uint32{500, 501}, [2]uint32{k, m})

	for _, c := range []struct {
		ndr, pdr, floor uint64
		basis           string
		rate            uint64
	}{
		{ndr: 10e6, pdr: 12e6, floor: 156_250, basis: "ndr", rate: 10e6},
		{ndr: 156_250, pdr: 156_250, floor: 156_250, basis: "pdr", rate: 156_250}, // the NDR at the search's floor
		{ndr: 0, pdr: 400_000, floor: 156_250, basis: "pdr", rate: 400_000},
		{ndr: 1e6, pdr: 3e6, floor: 156_250, basis: "pdr", rate: 3e6}, // below half the PDR
		{ndr: 1.5e6, pdr: 3e6, floor: 156_250, basis: "ndr", rate: 1.5e6},
		{ndr: 0, pdr: 0, floor: 156_250, basis: "", rate: 0},
	} {
		b, r := teardownBasis(c.ndr, c.pdr, c.floor)
		assert.Equal(t, c.basis, b, "%+v", c)
		assert.Equal(t, c.rate, r, "%+v", c)
	}
}

func TestTeardownTrigger(t *testing.T) {
	udp := nat.TickFromDuration(4 * time.Minute)
	jump, room, err := teardownTrigger(1000, 1000+teardownGap, 5000, udp)
	require.NoError(t, err)
	assert.Equal(t, nat.Tick(1000+240_000+384-5000), jump, "past the last tear-down flow's deadline by three slots")
	assert.Equal(t, time.Duration(60_000-384-128)*time.Millisecond, room, "a slot short of the first load flow's slot")

	// Across the tick's wrap.
	base := nat.Tick(math.MaxUint32 - 100)
	jump2, room2, err := teardownTrigger(base, base+teardownGap, base+4000, udp)
	require.NoError(t, err)
	assert.Equal(t, nat.Tick(240_000+384-4000), jump2)
	assert.Equal(t, room, room2)

	_, _, err = teardownTrigger(1000, 1000+teardownGap, 1000+240_384, udp)
	assert.Error(t, err, "the tear-down flows are already due")
	_, _, err = teardownTrigger(1000, 1000+2*nat.WheelSlotTicks, 5000, udp)
	assert.Error(t, err, "load flows in the tear-down flows' slots")
}

func TestTeardownSpan(t *testing.T) {
	ms := time.Millisecond
	s := []tdSample{{At: 0, Expired: 0, Polls: 0}, {At: 10 * ms, Expired: 60_000, Polls: 160}, {At: 85 * ms, Expired: 480_000, Polls: 1880},
		{At: 90 * ms, Expired: 490_000, Polls: 1920}, {At: 95 * ms, Expired: 490_000, Polls: 1920},
		{At: 101 * ms, Expired: 500_000, Polls: 1960}, {At: 120 * ms, Expired: 500_000, Polls: 2100}}
	span, unc, polls, err := teardownSpan(s, 500_000)
	require.NoError(t, err)
	assert.Equal(t, 101*ms, span, "the first sample showing them all")
	assert.Equal(t, 16*ms, unc, "since the sample before the first showing the last count below M (published after 85 ms)")
	assert.Equal(t, uint64(1960), polls)
	later := []tdSample{{At: 0}, {At: 10 * ms, Expired: 40_000}, {At: 85 * ms, Expired: 480_000}, {At: 90 * ms, Expired: 480_000},
		{At: 95 * ms, Expired: 490_000}, {At: 101 * ms, Expired: 500_000}}
	_, unc, _, err = teardownSpan(later, 500_000)
	require.NoError(t, err)
	assert.Equal(t, 11*ms, unc, "the last count below M first seen at 95 ms: published after 90 ms")

	_, _, _, err = teardownSpan(s[:4], 500_000)
	assert.ErrorContains(t, err, "490000 of 500000")
	_, _, _, err = teardownSpan(s, 0)
	assert.ErrorIs(t, err, errNoFlows)

	assert.InDelta(t, (480_000-60_000)/(1880-160.0), steadyFlowsPerPoll(s, 500_000), 1e-9, "from the first count of 10 % of M to the first of 90 %")
	assert.Zero(t, steadyFlowsPerPoll(s[:2], 500_000), "never reached 90 %")
}

func TestTeardownFinish(t *testing.T) {
	td := &rfcTeardown{Flows: 500_000, LoadPollsPerSecond: 12_000}
	td.finish(200*time.Millisecond, 10*time.Millisecond, time.Millisecond, 1960)
	assert.Empty(t, td.Error)
	assert.InDelta(t, 500_000/0.19, td.FlowsPerSecond, 1, "M / (T_N - T_0)")
	assert.InDelta(t, 500_000/1960.0, td.FlowsPerPoll, 1e-9)
	assert.InDelta(t, 1960/0.2, td.PollsPerSecond, 1e-6)
	assert.InDelta(t, 256*1960/0.2, td.BudgetCeiling, 1)
	assert.True(t, td.budgetBound(), "255 of a budget of 256 per poll, polling at 9800/s against 12000/s")
	assert.Equal(t, "paced by the per-poll budget", td.pace())
	assert.Equal(t, 0.001, td.UncertaintySeconds)
	td.LoadPollsPerSecond = 400_000
	assert.False(t, td.budgetBound(), "polls 40 times slower than the load's: the expiry work sets the pace")
	assert.Equal(t, "the expiry work: full budget per poll, polls slowed", td.pace())
	td.SteadyFlowsPerPoll = 180
	assert.Empty(t, td.pace(), "180 per poll in the steady part: the budget was not spent")

	td = &rfcTeardown{Flows: 500_000, LoadPollsPerSecond: 12_000}
	td.finish(200*time.Millisecond, 10*time.Millisecond, 0, 20_000)
	assert.False(t, td.budgetBound(), "25 per poll: not the budget")
	assert.Empty(t, td.pace())

	td = &rfcTeardown{Flows: 500}
	td.finish(100*time.Microsecond, 200*time.Microsecond, 0, 2)
	assert.Contains(t, td.Error, "T_N", "T_N below T_0 is no rate")
	assert.Zero(t, td.FlowsPerSecond)
}

func TestLoadOf(t *testing.T) {
	var h latencyHist
	for i := uint64(1); i <= 1000; i++ {
		h.record(i * 1000)
	}
	l := loadOf(trafficResult{Rate: 1000, Seconds: 2, Out: dirCount{Offered: 1000, Accepted: 996, Received: 990, Bad: 1}, In: dirCount{Offered: 1000, Accepted: 1000, Received: 1000}}, &h)
	assert.Equal(t, uint64(2000), l.Offered)
	assert.Equal(t, uint64(10), l.Lost)
	assert.Equal(t, uint64(4), l.Refused, "4 of the 10 refused by the ring, 6 lost beyond it")
	assert.InDelta(t, 0.005, l.LossRate, 1e-12)
	assert.Equal(t, uint64(1), l.Bad)
	assert.InDelta(t, 990, l.P99us, 990/64.0, "p99 of 1..1000 µs")
	assert.InDelta(t, 1000, l.MaxUs, 1e-9)
	assert.Zero(t, loadOf(trafficResult{}, nil).LossRate, "nothing offered: no ratio")
}

func TestTeardownReport(t *testing.T) {
	runs := []rfcRun{
		{Flows: 1000, Capacity: 1 << 24, Teardown: &rfcTeardown{Flows: 500, Error: "T_N 0.0001 s <= T_0 0.0002 s"}},
		{Flows: 1_000_000, Capacity: 1 << 24, Teardown: &rfcTeardown{Flows: 500_000, LoadFlows: 500_000, FlowsPerSecond: 3.2e6, LoadRate: 150_000,
			LoadBasis: "pdr", BasisRate: 300_000, LoadPercent: 50, Seconds: 0.16, EmptySeconds: 0.004, FlowsPerPoll: 255.9, PollBudget: 256,
			BudgetCeiling: 3.3e6, PollsPerSecond: 12_500, LoadPollsPerSecond: 20_000, LoadCovered: true, Load: &tdLoad{Offered: 300_000, Lost: 120, LossRate: 0.0004, P99us: 40, MaxUs: 900},
			Baseline: &tdLoad{Offered: 300_000, Lost: 3, LossRate: 0.00001}}},
	}
	tg := teardownTarget(runs)
	assert.Equal(t, "**no**", tg.Met, "3.2 M/s is below 5 M/s")
	assert.Equal(t, "3.20 M/s (1M flows, load 0.15 Mpps, 50 % of the PDR (zero-loss throughput degenerate))", tg.Measured)
	runs[1].Teardown.FlowsPerSecond = 6e6
	assert.Equal(t, "yes", teardownTarget(runs).Met)
	runs[1].Teardown.LoadPercent = 25
	assert.Equal(t, "**no**", teardownTarget(runs).Met, "not under half the throughput")
	assert.Equal(t, "not measured", teardownTarget(runs[:1]).Met, "an error is not a figure")
	trex := []rfcRun{{Flows: 65536, Teardown: &rfcTeardown{Flows: 65536, FlowsPerSecond: 7e6, LoadRate: 5e6}}}
	assert.Equal(t, "yes", teardownTarget(trex).Met, "TRex's files: half the throughput, no basis field")

	runs[1].Teardown.LoadPercent = 50
	runs[1].Teardown.FlowsPerSecond = 3.2e6
	var b bytes.Buffer
	writeTeardownMarkdown(&b, runs)
	s := b.String()
	assert.Contains(t, s, "| 1M | 500000 | 500000 | 0.150 Mpps (50 % of pdr 0.300) | 0.160000 s (± 0.000000) | 0.004000 s | 3.200 M | 255.9 (0.0) | 12500 / 20000 | 3.300 M/s | 120 of 300000 (0.040 %) | 3 of 300000 (0.001 %) | 40.0 / 900.0 µs | paced by the per-poll budget |")
	assert.Contains(t, s, "| 1K | 500 | 0 |")
	assert.Contains(t, s, "T_N 0.0001 s <= T_0 0.0002 s |")
}
