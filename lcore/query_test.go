package lcore

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natgw/natgw/nat"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queryTestSpec is a small appliance: one pool member with a block of
// block ports, default SNAT for the rest of 10.0.0.0/16, UDP flows idle
// out after udp. The tests open many flows from a few hosts: no per-host
// limit.
func queryTestSpec(workers, block int, udp time.Duration) nat.PolicySpec {
	s := testSpec()
	s.Timeouts.UDP = nat.TickFromDuration(udp)
	s.HostFlowPercent = 100
	feDefault := a4("198.19.1.20")
	s.Frontends = append(s.Frontends, feDefault)
	s.Pools[0].Members, s.Pools[0].PortsPerMember = []uint32{member}, block
	s.DefaultSNAT = &nat.DefaultSNATSpec{Sources: []nat.Prefix{{Addr: a4("10.0.0.0"), Bits: 16}},
		Frontends: []uint32{feDefault}, PortsPerMember: 1024, Workers: workers}
	return s
}

// testClock is a clock the test moves.
type testClock struct{ t atomic.Uint32 }

func (c *testClock) Now() nat.Tick           { return nat.Tick(c.t.Load()) }
func (c *testClock) Advance(d time.Duration) { c.t.Add(uint32(d / time.Millisecond)) }

// testRuntime is a runtime on fake ports whose workers the test polls
// itself (it is not started).
type testRuntime struct {
	*Runtime
	clock  *testClock
	policy *nat.PolicyHolder
	ports  [NumPorts]*FakePort
}

func newTestRuntime(t testing.TB, workers, capacity, block int, udp time.Duration) *testRuntime {
	t.Helper()
	p := compileSpec(t, queryTestSpec(workers, block, udp), nil)
	tr := &testRuntime{clock: &testClock{}, policy: &nat.PolicyHolder{}}
	tr.clock.t.Store(1)
	tr.policy.Store(p)
	var ports [NumPorts]Port
	for i := range ports {
		tr.ports[i] = NewFakePort(PortName(uint8(i)), [6]byte{2, 0, 0, 0, 0, byte(i + 1)}, workers+1)
		ports[i] = tr.ports[i]
	}
	var err error
	tr.Runtime, err = NewRuntime(RuntimeConfig{Workers: workers, Ports: ports, Policy: tr.policy,
		FlowCapacity: capacity, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: tr.clock.Now})
	require.NoError(t, err)
	return tr
}

// addFlow opens a UDP flow from priv:sport to remote:dport on the worker
// that owns the remote endpoint, straight through its translator (the
// worker is not running).
func (tr *testRuntime) addFlow(t testing.TB, priv, remote uint32, sport, dport uint16) {
	var buf [64]byte
	n := nat.BuildUDP(buf[:], priv, remote, sport, dport, 64, nil)
	w := tr.Workers[tr.Owner.Of(remote, dport)]
	if v := w.Translator().Outbound(buf[:n], tr.clock.Now()); v != nat.VerdictForward {
		t.Fatalf("flow %d:%d -> %d:%d: verdict %v", priv, sport, remote, dport, v)
	}
}

// pollUntil polls every worker until done is closed and returns the
// number of rounds in which a worker had a query to serve (at most limit).
func (tr *testRuntime) pollUntil(t testing.TB, done <-chan struct{}, limit int) int {
	t.Helper()
	rounds := 0
	for {
		pending := false
		for _, w := range tr.Workers {
			pending = pending || w.qs.slot.Load() != nil
			w.PollOnce()
		}
		if pending {
			rounds++
		}
		select {
		case <-done:
			return rounds
		default:
		}
		if !pending {
			time.Sleep(100 * time.Microsecond) // the query is on its way
		}
		if rounds > limit {
			t.Fatalf("not done after %d polls", limit)
		}
	}
}

var (
	qMember  = nat.U32(qAddr("10.0.1.4"))
	qOther   = nat.U32(qAddr("10.0.2.9"))
	qServer1 = nat.U32(qAddr("198.18.0.10"))
	qServer2 = nat.U32(qAddr("198.18.0.11"))
)

func TestQueries(t *testing.T) {
	tr := newTestRuntime(t, 2, 4*QueryChunk+100, 8, 4*time.Minute)
	for i := range 8 {
		tr.addFlow(t, qMember, qServer1, uint16(5000+i), 53)
		tr.addFlow(t, qMember, qServer2, uint16(5000+i), 53)
	}
	for i := range 3 {
		tr.addFlow(t, qOther, qServer1, uint16(6000+i), 53)
	}
	tr.clock.Advance(1500 * time.Millisecond)

	type result struct {
		flows, ports int
		list         []FlowInfo
		err          error
	}
	tests := []struct {
		name                string
		run                 func(ctx context.Context) result
		wantFlows, wantPort int
		wantList            int
	}{
		{"mapping of a member", func(ctx context.Context) result {
			f, p, err := tr.MappingUsage(ctx, qMember)
			return result{flows: f, ports: p, err: err}
		}, 16, 8, 0},
		{"mapping of a default-SNAT source", func(ctx context.Context) result {
			f, p, err := tr.MappingUsage(ctx, qOther)
			return result{flows: f, ports: p, err: err}
		}, 3, 3, 0},
		{"mapping of an unknown address", func(ctx context.Context) result {
			f, p, err := tr.MappingUsage(ctx, nat.U32(qAddr("10.0.9.9")))
			return result{flows: f, ports: p, err: err}
		}, 0, 0, 0},
		{"all flows", func(ctx context.Context) result {
			l, err := tr.Flows(ctx, 0, false, 100)
			return result{list: l, err: err}
		}, 0, 0, 19},
		{"flows of one address", func(ctx context.Context) result {
			l, err := tr.Flows(ctx, qOther, true, 100)
			return result{list: l, err: err}
		}, 0, 0, 3},
		{"limit", func(ctx context.Context) result {
			l, err := tr.Flows(ctx, 0, false, 5)
			return result{list: l, err: err}
		}, 0, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ch := make(chan result, 1)
			done := make(chan struct{})
			go func() { ch <- tt.run(ctx); close(done) }()
			rounds := tr.pollUntil(t, done, 1000)
			r := <-ch
			require.NoError(t, r.err)
			assert.Equal(t, tt.wantFlows, r.flows)
			assert.Equal(t, tt.wantPort, r.ports)
			assert.Len(t, r.list, tt.wantList)
			assert.GreaterOrEqual(t, rounds, 1)
			for _, f := range r.list {
				assert.Equal(t, uint8(nat.ProtoUDP), f.Proto)
				assert.Equal(t, nat.Tick(1500), f.Idle)
				assert.Equal(t, uint16(53), f.RemotePort)
				assert.Equal(t, tr.Owner.Of(f.Remote, f.RemotePort), f.Worker)
			}
		})
	}
}

// TestQueryChunks checks that a worker serves a query over several polls,
// QueryChunk flow slots at a time, up to the highest record ever used
// (not the capacity: issue 20, a pass over never-used records faulted in
// the whole record array on the worker).
func TestQueryChunks(t *testing.T) {
	tr := newTestRuntime(t, 1, 1<<20, 1024, 4*time.Minute)
	const flows = 2*QueryChunk + 1
	for i := range flows {
		tr.addFlow(t, qMember, qServer1+uint32(i), 5000, 53)
	}
	require.Equal(t, uint32(flows), tr.Workers[0].Translator().Flows().HighWater())
	q := NewMappingQuery(qMember)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- tr.Workers[0].Query(ctx, q) }()
	// Wait until the query is in the slot, then count the polls.
	for tr.Workers[0].qs.slot.Load() == nil {
		time.Sleep(time.Millisecond)
	}
	rounds := tr.pollUntil(t, q.Done(), 100)
	require.NoError(t, <-errc)
	assert.Equal(t, 3, rounds)
	assert.Equal(t, flows, q.Count)
}

// TestQueryDeadline checks that a query nobody serves fails with
// ErrWorkerBusy, is dropped at the worker's next poll, and that the slot
// then serves the next query.
func TestQueryDeadline(t *testing.T) {
	tr := newTestRuntime(t, 1, 1000, 1024, 4*time.Minute)
	tr.addFlow(t, qMember, qServer1, 5000, 53)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, _, err := tr.MappingUsage(ctx, qMember)
	require.ErrorIs(t, err, ErrWorkerBusy)
	tr.Workers[0].PollOnce()
	assert.Nil(t, tr.Workers[0].qs.slot.Load(), "the cancelled query left the slot")

	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	done := make(chan struct{})
	var flows int
	go func() { flows, _, err = tr.MappingUsage(ctx2, qMember); close(done) }()
	tr.pollUntil(t, done, 100)
	require.NoError(t, err)
	assert.Equal(t, 1, flows)
}

func TestUtilization(t *testing.T) {
	tests := []struct {
		name      string
		flows     int
		wantMax   float64
		wantFlows uint64
	}{
		{"empty", 0, 0, 0},
		{"half", 4, 0.5, 4},
		{"full", 8, 1, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A table sized for a peak: the scan passes the records
			// flows have used, not the capacity (issue 20).
			tr := newTestRuntime(t, 1, 1<<20, 8, 4*time.Minute)
			w := tr.Workers[0]
			for i := range tt.flows {
				tr.addFlow(t, qMember, qServer1, uint16(5000+i), 53)
			}
			tr.addFlow(t, qMember, qServer2, 5000, 53) // 1 of 8 to another destination
			tr.addFlow(t, qOther, qServer1, 5000, 53)  // default SNAT: 1 of 1024
			require.Nil(t, w.Utilization())
			polls := 0
			for w.Utilization() == nil && polls < 100 {
				w.PollOnce()
				polls++
			}
			assert.Equal(t, 1, polls, "one ScanChunk of flow slots per poll, up to the highest record used")
			u := w.Utilization()
			require.NotNil(t, u)
			require.Len(t, u.Max, 2)
			assert.Equal(t, max(tt.wantMax, 0.125), u.Max[0])
			assert.Equal(t, tt.wantFlows+1, u.Flows[0])
			assert.Equal(t, 1.0/1024, u.Max[1])
			assert.Equal(t, uint64(1), u.Flows[1])
			// No new pass before UtilizationInterval.
			w.PollOnce()
			assert.Same(t, u, w.Utilization())
			tr.clock.Advance(time.Duration(UtilizationInterval) * time.Millisecond)
			for range polls {
				w.PollOnce()
			}
			assert.NotSame(t, u, w.Utilization())
		})
	}
}

// TestUtilizationChunks checks that the utilisation scan takes ScanChunk
// flow slots per poll up to the highest record ever used, in a table
// sized far above it.
func TestUtilizationChunks(t *testing.T) {
	tr := newTestRuntime(t, 1, 1<<20, 8, 4*time.Minute)
	w := tr.Workers[0]
	const flows = 2*ScanChunk + 1
	for i := range flows {
		tr.addFlow(t, qMember, qServer1+uint32(i), 5000, 53)
	}
	polls := 0
	for w.Utilization() == nil && polls < 100 {
		w.PollOnce()
		polls++
	}
	assert.Equal(t, 3, polls)
	u := w.Utilization()
	require.NotNil(t, u)
	assert.Equal(t, uint64(flows), u.Flows[0])
}

func TestPortSet(t *testing.T) {
	tests := []struct {
		name  string
		ports []uint16
		want  int
	}{
		{"empty", nil, 0},
		{"edges", []uint16{0, 63, 64, 65535}, 4},
		{"duplicates", []uint16{1024, 1024, 1025}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s, u PortSet
			for _, p := range tt.ports {
				s.Add(p)
				assert.True(t, s.Has(p))
			}
			assert.Equal(t, tt.want, s.Len())
			u.Add(7)
			u.Union(&s)
			assert.Equal(t, tt.want+1, u.Len())
		})
	}
}

// TestServeQueriesNoAllocs checks that serving a query chunk and a scan
// chunk allocates nothing.
func TestServeQueriesNoAllocs(t *testing.T) {
	tr := newTestRuntime(t, 1, 1<<20, 1024, 4*time.Minute)
	w := tr.Workers[0]
	for i := range 100 {
		tr.addFlow(t, qMember, qServer1, uint16(5000+i), 53)
	}
	w.serveQueries(tr.clock.Now()) // starts a scan pass (allocates its buffers)
	assert.Zero(t, testing.AllocsPerRun(50, func() { w.serveQueries(tr.clock.Now()) }), "scan chunk")

	q := NewFlowsQuery(0, false, 1000)
	require.True(t, w.qs.slot.CompareAndSwap(nil, q))
	assert.Zero(t, testing.AllocsPerRun(50, func() { w.serveQueries(tr.clock.Now()) }), "query chunk")
	assert.Len(t, q.Flows, 100)
}

func BenchmarkServeQueries(b *testing.B) {
	// A chunk full of live flows (the first half of the table): the worst
	// case of one poll. The cursor is rewound so a pass never completes;
	// the snapshot a completed pass publishes (4 small allocations every
	// UtilizationInterval) is not part of the per-poll cost.
	tr := newTestRuntime(b, 1, 2*QueryChunk, 1024, 4*time.Minute)
	w := tr.Workers[0]
	for i := range QueryChunk {
		tr.addFlow(b, qMember, qServer1+uint32(i/512), uint16(5000+i%512), 53)
	}
	b.Run("scan chunk", func(b *testing.B) {
		b.ReportAllocs()
		w.serveQueries(tr.clock.Now()) // starts a pass
		for b.Loop() {
			w.qs.scanCursor = 0
			w.serveQueries(tr.clock.Now())
		}
	})
	b.Run("query chunk", func(b *testing.B) {
		b.ReportAllocs()
		q := NewMappingQuery(qMember)
		for b.Loop() {
			q.cursor = 0
			w.stepQuery(q, tr.clock.Now())
		}
	})
}

func qAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestFlowsQueryBuffers checks that a flow query's buffers are sized by
// the worker's table (live flows plus QuerySlack, at most its capacity),
// not by the client's limit alone: before, a limit of MaxQueryFlows made
// every worker's buffer MaxQueryFlows flows long whatever the table held.
func TestFlowsQueryBuffers(t *testing.T) {
	tr := newTestRuntime(t, 2, 4*QueryChunk, 8, 4*time.Minute)
	for i := range 8 {
		tr.addFlow(t, qMember, qServer1, uint16(5000+i), 53)
		tr.addFlow(t, qMember, qServer2, uint16(5000+i), 53)
	}
	for _, w := range tr.Workers {
		w.PollOnce() // publishes FlowsActive
	}
	total := 0
	for i, q := range tr.flowsQueries(0, false, MaxQueryFlows) {
		var live int
		for p := range tr.Workers[i].Counters.FlowsActive {
			live += int(tr.Workers[i].Counters.FlowsActive[p].Load())
		}
		total += live
		assert.Equal(t, live+QuerySlack, cap(q.Flows), "worker %d", i)
	}
	assert.Equal(t, 16, total)
	for _, q := range tr.flowsQueries(0, false, 5) {
		assert.Equal(t, 5, cap(q.Flows), "the limit still bounds the buffer")
	}

	small := newTestRuntime(t, 1, 100, 8, 4*time.Minute)
	for _, q := range small.flowsQueries(0, false, MaxQueryFlows) {
		assert.Equal(t, 100, cap(q.Flows), "the table's capacity bounds the buffer")
	}
}
