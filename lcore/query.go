package lcore

import (
	"context"
	"errors"
	"math/bits"
	"sync/atomic"

	"github.com/natgw/natgw/nat"
	"github.com/natgw/natgw/portalloc"
)

// This file is how the management core looks into a worker's flow table
// without touching it: a per-worker query slot the worker serves between
// bursts. The management core (an HTTP handler) fills a Query, publishes it
// in the worker's slot with one compare-and-swap and waits for the query's
// done channel with a deadline. The worker, once per poll, loads the slot
// (one atomic load: nothing when it is empty), examines at most QueryChunk
// flow slots from the query's cursor, writes what it finds into the query's
// own buffers, and when it reaches the end of its table (the highest record
// ever used, nat.FlowTable.HighWater) empties the slot and closes done. So
// a worker never pauses more than one chunk, even with millions of flows,
// and nothing but the worker reads its table.
//
// When no query is pending, the same call advances the worker's port
// utilisation scan (one ScanChunk per poll, a full pass every
// UtilizationInterval) and publishes per-pool results for the metrics.
//
// Ownership: Query fields are written by the management core before the
// query is published and by the worker until done is closed; after that
// only the management core reads them. A query whose caller gave up
// (context done) is marked cancelled: the worker drops it at its next poll
// and nobody reads its buffers.

// QueryChunk is the number of flow slots a worker examines per poll for a
// query: at about 10-50 ns a slot, well under a millisecond of pause.
const QueryChunk = 4096

// ScanChunk is the number of flow slots a worker examines per poll for the
// utilisation scan. Each live flow costs a lookup in the usage table, a
// memory access of 100-150 ns in a large table, so 4096 slots made polls
// of up to half a millisecond (measured at 1 M flows: about 3500 gaps over
// 100 µs between two polls a minute); 512 keeps a scan chunk under 100 µs
// and a pass over 2 M slots still takes some 4000 polls, a fraction of a
// second.
const ScanChunk = 512

// UtilizationInterval is how often (in ticks, ms) a worker starts a new
// pass of its port utilisation scan.
const UtilizationInterval nat.Tick = 5000

// MaxQueryFlows is the largest Limit a flow query accepts.
const MaxQueryFlows = 100_000

// QuerySlack is how many flows beyond a worker's live flows a flow query's
// buffer holds, for flows created while the query runs.
const QuerySlack = 256

// ErrWorkerBusy is returned when a query could not be handed to a worker or
// did not complete before the caller's deadline: the worker is not polling
// or another query holds its slot.
var ErrWorkerBusy = errors.New("worker did not answer the query in time")

// QueryKind selects what a Query collects.
type QueryKind uint8

// Query kinds.
const (
	// QueryFlows lists flows (all of them, or those of one private
	// address), at most Limit.
	QueryFlows QueryKind = iota + 1
	// QueryMapping counts the flows of one private address and marks the
	// public ports they hold.
	QueryMapping
	// QueryPlan counts, by scope of the running policy, the live flows a
	// candidate policy would reclaim (nat.Policy.Keeps), with a sample
	// of each (natgw plan).
	QueryPlan
)

// PlanSamples is the number of flows of each scope a plan query keeps as
// a sample of those it counts.
const PlanSamples = 5

// FlowInfo is one flow as a query reports it: a copy of the record, with
// its idle time and owning worker.
type FlowInfo struct {
	// Proto is the IP protocol number.
	Proto uint8
	// State is the flow state (nat.StateTCPSynSent etc.).
	State uint8
	// Private, Public and Remote are the flow's addresses, host byte order.
	Private, Public, Remote uint32
	// PrivatePort, PublicPort and RemotePort are its ports (ICMP echo: the
	// identifier, the translated identifier and 0).
	PrivatePort, PublicPort, RemotePort uint16
	// Idle is the time since the flow's last packet, in ms.
	Idle nat.Tick
	// Worker is the index of the worker that owns the flow.
	Worker int
}

// PortSet is a set of ports (a 65,536-bit bitmap, 8 KiB).
type PortSet [1024]uint64

// Add puts port in the set.
func (s *PortSet) Add(port uint16) { s[port>>6] |= 1 << (port & 63) }

// Has reports whether port is in the set.
func (s *PortSet) Has(port uint16) bool { return s[port>>6]&(1<<(port&63)) != 0 }

// Union adds every port of o to s.
func (s *PortSet) Union(o *PortSet) {
	for i := range s {
		s[i] |= o[i]
	}
}

// Len returns the number of ports in the set.
func (s *PortSet) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// Query is one request to one worker. Build it with NewFlowsQuery or
// NewMappingQuery and pass it to Worker.Query (or use the Runtime helpers,
// which ask every worker). A Query is used once.
type Query struct {
	// Kind says what to collect.
	Kind QueryKind
	// Private restricts the query to flows of one private address when
	// HasPrivate is set (always set for QueryMapping).
	Private    uint32
	HasPrivate bool

	// Flows receives the flows found (QueryFlows); its capacity is the
	// limit, so the worker never allocates.
	Flows []FlowInfo
	// Count is the number of matching flows (for QueryFlows, those
	// collected).
	Count int
	// Ports receives the public ports the matching flows hold
	// (QueryMapping).
	Ports *PortSet

	// Base is the running policy a plan query was built against and
	// Candidate the policy it asks about (QueryPlan).
	Base, Candidate *nat.Policy
	// Reclaimed counts the flows Candidate would reclaim, by PlanScope of
	// Base; Samples holds up to PlanSamples of them per scope (QueryPlan).
	Reclaimed []int
	Samples   [][]FlowInfo
	// Draining counts the flows Candidate would not keep but drain
	// rather than reclaim (nat.Policy.Drains), by PlanScope of Base
	// (QueryPlan).
	Draining []int
	// Sweeping counts the flows of older generations than Base met by a
	// plan query: a reload's sweep is still deciding them, so they are
	// not counted in Reclaimed (QueryPlan).
	Sweeping int
	// Stale is set when the worker's running policy was not Base (a
	// reload happened): the plan query's counts are not valid.
	Stale bool

	cursor    uint32
	cancelled atomic.Bool
	done      chan struct{}
}

// NewFlowsQuery returns a query for at most limit flows (clamped to 1 and
// MaxQueryFlows), of private address priv only when hasPriv.
func NewFlowsQuery(priv uint32, hasPriv bool, limit int) *Query {
	limit = min(max(limit, 1), MaxQueryFlows)
	return &Query{Kind: QueryFlows, Private: priv, HasPrivate: hasPriv,
		Flows: make([]FlowInfo, 0, limit), done: make(chan struct{})}
}

// NewMappingQuery returns a query counting the flows and public ports of
// private address priv.
func NewMappingQuery(priv uint32) *Query {
	return &Query{Kind: QueryMapping, Private: priv, HasPrivate: true,
		Ports: new(PortSet), done: make(chan struct{})}
}

// NewPlanQuery returns a query counting the flows that candidate would
// reclaim from a worker running base, by PlanScope of base.
func NewPlanQuery(base, candidate *nat.Policy) *Query {
	n := len(base.Pools) + 2
	q := &Query{Kind: QueryPlan, Base: base, Candidate: candidate,
		Reclaimed: make([]int, n), Draining: make([]int, n), Samples: make([][]FlowInfo, n), done: make(chan struct{})}
	for i := range q.Samples {
		q.Samples[i] = make([]FlowInfo, 0, PlanSamples)
	}
	return q
}

// PlanScope returns the index a plan query counts a flow of scope under
// in a policy of pools pools: the pool index, pools for default SNAT,
// pools+1 for instances (and any scope out of range).
func PlanScope(scope uint16, pools int) int {
	switch {
	case scope == nat.ScopeDefault:
		return pools
	case int(scope) < pools:
		return int(scope)
	}
	return pools + 1
}

// Done is closed when the worker has finished the query.
func (q *Query) Done() <-chan struct{} { return q.done }

// Utilization is a worker's port utilisation snapshot, published at the
// end of each scan pass. Slices are indexed like nat.Stats.Exhausted: pool
// index of the policy generation Gen, default SNAT last.
type Utilization struct {
	// Gen is the policy generation the scan ran under.
	Gen uint32
	// Max is, per pool, the highest ports-used / ports-allocated ratio
	// over any member and destination the worker holds.
	Max []float64
	// Flows is, per pool, the number of flows the worker held.
	Flows []uint64
	// At is the worker's clock when the pass finished.
	At nat.Tick
}

// queryState is a worker's query slot and utilisation scan. The zero
// value is ready: no query pending, no scan started.
type queryState struct {
	slot atomic.Pointer[Query]
	util atomic.Pointer[Utilization]

	// Scan state, the worker's own.
	scanPol    *nat.Policy
	scanCursor uint32
	scanStart  nat.Tick
	scanning   bool
	scanMax    []float64
	scanFlows  []uint64
	scanSize   []int
}

// Query hands q to the worker and waits until the worker has served it or
// ctx is done. On ErrWorkerBusy (or ctx's error) q must not be read.
// Query may be called from any goroutine but the worker's own.
func (w *Worker) Query(ctx context.Context, q *Query) error {
	if err := w.submit(ctx, q); err != nil {
		return err
	}
	return wait(ctx, q)
}

// submit publishes q in the worker's slot, waiting for a query already
// there to finish.
func (w *Worker) submit(ctx context.Context, q *Query) error {
	for {
		if w.qs.slot.CompareAndSwap(nil, q) {
			return nil
		}
		cur := w.qs.slot.Load()
		if cur == nil {
			continue
		}
		select {
		case <-cur.done:
		case <-ctx.Done():
			return busy(ctx)
		}
	}
}

// wait waits for q, cancelling it when ctx is done first.
func wait(ctx context.Context, q *Query) error {
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		q.cancelled.Store(true)
		return busy(ctx)
	}
}

func busy(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return ErrWorkerBusy
}

// Utilization returns the worker's last published utilisation snapshot,
// or nil before its first scan pass ends. Any goroutine may call it.
func (w *Worker) Utilization() *Utilization { return w.qs.util.Load() }

// serveQueries is called by the worker once per poll: it advances the
// pending query by one chunk, or else the utilisation scan. It allocates
// nothing except the snapshot it publishes at the end of a scan pass.
func (w *Worker) serveQueries(now nat.Tick) {
	if q := w.qs.slot.Load(); q != nil {
		if q.cancelled.Load() || w.stepQuery(q, now) {
			w.qs.slot.Store(nil)
			close(q.done)
		}
		return
	}
	w.stepUtilization(now)
}

// stepQuery examines the next chunk of flow slots for q and reports
// whether q is complete.
func (w *Worker) stepQuery(q *Query, now nat.Tick) bool {
	if q.Kind == QueryPlan {
		return w.stepPlan(q, now)
	}
	ft := w.tr.Flows()
	c := ft.HighWater() // records above never held a flow
	end := min(q.cursor+QueryChunk, c)
	for i := q.cursor + 1; i <= end; i++ {
		f := ft.Flow(i)
		if f.State == nat.StateFree || (q.HasPrivate && f.Priv != q.Private) {
			continue
		}
		q.Count++
		switch q.Kind {
		case QueryMapping:
			q.Ports.Add(f.PubPort)
		case QueryFlows:
			idle := now - f.LastSeen
			if int32(idle) < 0 {
				idle = 0
			}
			q.Flows = append(q.Flows, FlowInfo{Proto: f.Proto, State: f.State,
				Private: f.Priv, Public: f.Pub, Remote: f.Remote,
				PrivatePort: f.PrivPort, PublicPort: f.PubPort, RemotePort: f.RemotePort,
				Idle: idle, Worker: w.id})
			if len(q.Flows) == cap(q.Flows) {
				return true
			}
		}
	}
	q.cursor = end
	return end >= c
}

// stepPlan examines the next chunk of flow slots for plan query q and
// reports whether q is complete. It only reads the flows: Keeps changes
// nothing.
func (w *Worker) stepPlan(q *Query, now nat.Tick) bool {
	if w.tr.Policy() != q.Base {
		q.Stale = true
		return true
	}
	ft := w.tr.Flows()
	c := ft.HighWater() // records above never held a flow
	end := min(q.cursor+QueryChunk, c)
	pools := len(q.Base.Pools)
	for i := q.cursor + 1; i <= end; i++ {
		f := ft.Flow(i)
		if f.State == nat.StateFree {
			continue
		}
		if f.Gen != q.Base.Gen {
			q.Sweeping++
			continue
		}
		q.Count++
		if q.Candidate.Keeps(f) {
			continue
		}
		k := PlanScope(f.Scope, pools)
		if q.Candidate.Drains(f) {
			q.Draining[k]++
			continue
		}
		q.Reclaimed[k]++
		if len(q.Samples[k]) < cap(q.Samples[k]) {
			idle := now - f.LastSeen
			if int32(idle) < 0 {
				idle = 0
			}
			q.Samples[k] = append(q.Samples[k], FlowInfo{Proto: f.Proto, State: f.State,
				Private: f.Priv, Public: f.Pub, Remote: f.Remote,
				PrivatePort: f.PrivPort, PublicPort: f.PubPort, RemotePort: f.RemotePort,
				Idle: idle, Worker: w.id})
		}
	}
	q.cursor = end
	return end >= c
}

// stepUtilization advances the utilisation scan by one chunk, starting a
// pass every UtilizationInterval. For every live pool or default-SNAT flow
// it looks up the port count of the flow's member and destination in the
// worker's portalloc.Usage and keeps the highest count / block size per
// pool, and counts flows per pool.
func (w *Worker) stepUtilization(now nat.Tick) {
	s := &w.qs
	pol := w.tr.Policy()
	if !s.scanning {
		if s.scanPol != nil && int32(now-s.scanStart) < int32(UtilizationInterval) {
			return
		}
		s.startScan(pol, now)
	} else if s.scanPol != pol {
		s.startScan(pol, now) // the policy changed: start over under it
	}
	ft := w.tr.Flows()
	usage := w.tr.Usage()
	c := ft.HighWater() // records above never held a flow
	end := min(s.scanCursor+ScanChunk, c)
	last := len(s.scanMax) - 1
	for i := s.scanCursor + 1; i <= end; i++ {
		f := ft.Flow(i)
		if f.State == nat.StateFree || f.Scope == nat.ScopeInstance || f.Gen != pol.Gen {
			continue
		}
		p := last
		if f.Scope != nat.ScopeDefault {
			if int(f.Scope) >= last {
				continue
			}
			p = int(f.Scope)
		}
		s.scanFlows[p]++
		size := s.scanSize[p]
		if size <= 0 {
			continue
		}
		n := usage.Count(portalloc.Key{Private: f.Priv, Remote: f.Remote, RemotePort: f.RemotePort, Proto: f.Proto})
		if r := float64(n) / float64(size); r > s.scanMax[p] {
			s.scanMax[p] = r
		}
	}
	s.scanCursor = end
	if end >= c {
		s.scanning = false
		s.util.Store(&Utilization{Gen: pol.Gen, Max: s.scanMax, Flows: s.scanFlows, At: now})
		s.scanMax, s.scanFlows = nil, nil
	}
}

// startScan begins a utilisation pass under policy pol.
func (s *queryState) startScan(pol *nat.Policy, now nat.Tick) {
	n := len(pol.Pools) + 1
	s.scanPol, s.scanStart, s.scanCursor, s.scanning = pol, now, 0, true
	s.scanMax = make([]float64, n)
	s.scanFlows = make([]uint64, n)
	s.scanSize = make([]int, n)
	for i, p := range pol.Pools {
		s.scanSize[i] = p.PortsPerMember
	}
	s.scanSize[n-1] = pol.DefaultSNATPortsPerMember()
}

// Flows asks every worker for flows (of private address priv when
// hasPriv), at most limit in all, and returns them in worker order.
func (r *Runtime) Flows(ctx context.Context, priv uint32, hasPriv bool, limit int) ([]FlowInfo, error) {
	qs := r.flowsQueries(priv, hasPriv, limit)
	if err := r.queryAll(ctx, qs); err != nil {
		return nil, err
	}
	var out []FlowInfo
	for _, q := range qs {
		out = append(out, q.Flows...)
	}
	if len(out) > limit {
		out = out[:max(limit, 0)]
	}
	return out, nil
}

// flowsQueries builds one flow query per worker. Each buffer is sized by
// what the worker's table holds (its live flows, published once per poll,
// plus QuerySlack, never more than its capacity), not by limit alone: a
// client asking for MaxQueryFlows of an almost empty table costs little.
// Flows created beyond the slack while the query runs are not listed, as
// a query is no atomic snapshot anyway.
func (r *Runtime) flowsQueries(priv uint32, hasPriv bool, limit int) []*Query {
	qs := make([]*Query, len(r.Workers))
	for i, w := range r.Workers {
		var live uint64
		for p := range w.Counters.FlowsActive {
			live += w.Counters.FlowsActive[p].Load()
		}
		size := uint64(min(max(limit, 1), MaxQueryFlows))
		size = min(size, live+QuerySlack, uint64(max(w.tr.Flows().Capacity(), 1)))
		qs[i] = NewFlowsQuery(priv, hasPriv, int(size))
	}
	return qs
}

// MappingUsage returns the number of flows of private address priv and the
// number of distinct public ports they hold, over all workers [S9].
func (r *Runtime) MappingUsage(ctx context.Context, priv uint32) (flows, portsInUse int, err error) {
	qs := make([]*Query, len(r.Workers))
	for i := range qs {
		qs[i] = NewMappingQuery(priv)
	}
	if err := r.queryAll(ctx, qs); err != nil {
		return 0, 0, err
	}
	var ports PortSet
	for _, q := range qs {
		flows += q.Count
		ports.Union(q.Ports)
	}
	return flows, ports.Len(), nil
}

// Plan is what a candidate policy would reclaim from the workers' live
// flows, summed over the workers (Runtime.Plan).
type Plan struct {
	// Flows is the number of live flows examined.
	Flows int
	// Reclaimed counts, by PlanScope of the running policy, the flows the
	// candidate would reclaim; Samples holds up to PlanSamples of each.
	Reclaimed []int
	Samples   [][]FlowInfo
	// Draining counts, by PlanScope of the running policy, the flows the
	// candidate would neither keep nor reclaim but drain
	// (nat.Policy.Drains).
	Draining []int
	// Sweeping counts flows a previous reload's sweep had not decided
	// yet; they are not counted (wait and plan again for an exact count).
	Sweeping int
}

// ErrPolicyChanged is returned by Runtime.Plan when a reload published
// another policy while the workers were counting.
var ErrPolicyChanged = errors.New("the running configuration changed while the workers were counting: plan again")

// Plan asks every worker which of its live flows candidate would
// reclaim if it replaced base, the running policy [S7]. It changes
// nothing. The workers decide with nat.Policy.Keeps, the function their
// sweep uses after a reload.
func (r *Runtime) Plan(ctx context.Context, base, candidate *nat.Policy) (*Plan, error) {
	qs := make([]*Query, len(r.Workers))
	for i := range qs {
		qs[i] = NewPlanQuery(base, candidate)
	}
	if err := r.queryAll(ctx, qs); err != nil {
		return nil, err
	}
	n := len(base.Pools) + 2
	out := &Plan{Reclaimed: make([]int, n), Draining: make([]int, n), Samples: make([][]FlowInfo, n)}
	for _, q := range qs {
		if q.Stale {
			return nil, ErrPolicyChanged
		}
		out.Flows += q.Count
		out.Sweeping += q.Sweeping
		for k := range n {
			out.Reclaimed[k] += q.Reclaimed[k]
			out.Draining[k] += q.Draining[k]
			for _, f := range q.Samples[k] {
				if len(out.Samples[k]) < PlanSamples {
					out.Samples[k] = append(out.Samples[k], f)
				}
			}
		}
	}
	return out, nil
}

// queryAll hands qs[i] to worker i and waits for them all.
func (r *Runtime) queryAll(ctx context.Context, qs []*Query) error {
	for i, w := range r.Workers {
		if err := w.submit(ctx, qs[i]); err != nil {
			for _, q := range qs[:i] {
				q.cancelled.Store(true)
			}
			return err
		}
	}
	for i, q := range qs {
		if err := wait(ctx, q); err != nil {
			for _, q := range qs[i+1:] {
				q.cancelled.Store(true)
			}
			return err
		}
	}
	return nil
}
