package mgmt

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/nat"
	"github.com/natgw/natgw/portalloc"
)

// This file turns the workers' hot sets (portalloc.Hot, published by
// lcore.HotCounters) into hotspots: once a second (Maintain) the
// management core merges the sets, appends a sample per pair to a short
// history, and estimates from it each pair's net growth (ports taken minus
// ports released per second, a least-squares line over HotspotWindow) and
// its time to exhaustion, (block - in use) / growth. A pair whose growth is
// not significantly above zero gets no estimate: flat or shrinking pairs
// never run out. GET /v1/hotspots, natgw ctl top and the
// natgw_snat_exhaustion_eta_seconds gauge read the result.

// Hotspot estimation parameters.
const (
	// HotspotWindow is the span of history the growth is estimated over.
	HotspotWindow = 30 * time.Second
	// HotspotMinSamples is the fewest samples (one a second) an estimate
	// needs.
	HotspotMinSamples = 5
	// HotspotMinGrowth is the growth, in ports per second, below which a
	// pair counts as flat (no estimate).
	HotspotMinGrowth = 0.02
	// DefaultHotspotsLimit is how many hotspots GET /v1/hotspots returns
	// when the request names no limit; MaxHotspotsLimit the most it
	// accepts.
	DefaultHotspotsLimit = 20
	MaxHotspotsLimit     = 1000
)

// hotSamples is the capacity of a pair's history ring: more than one
// sample a second over HotspotWindow.
const hotSamples = 64

// hotSample is one second's view of a pair.
type hotSample struct {
	at                time.Time
	inUse             float64
	created, released uint64
	serial            uint64
}

// hotPair is a pair's history.
type hotPair struct {
	key     portalloc.Key
	scope   uint16
	size    uint32
	samples [hotSamples]hotSample
	n, next int
}

func (p *hotPair) add(s hotSample) {
	p.samples[p.next] = s
	p.next = (p.next + 1) % hotSamples
	p.n = min(p.n+1, hotSamples)
}

// window returns the samples no older than HotspotWindow before the last,
// oldest first.
func (p *hotPair) window(dst []hotSample) []hotSample {
	dst = dst[:0]
	if p.n == 0 {
		return dst
	}
	last := p.samples[(p.next+hotSamples-1)%hotSamples].at
	for i := p.n; i > 0; i-- {
		s := p.samples[(p.next+hotSamples-i)%hotSamples]
		if last.Sub(s.at) <= HotspotWindow {
			dst = append(dst, s)
		}
	}
	return dst
}

// Estimate is a pair's growth and time to exhaustion.
type Estimate struct {
	// Growth is the net growth in ports per second (least-squares slope
	// of ports in use over the window).
	Growth float64
	// Created and Released are the rates of ports taken and released,
	// per second, over the samples of the current entry in the hot set.
	Created, Released float64
	// ETA is the estimated time until no port is left, in seconds;
	// HasETA is false when the pair is not growing (or the history is
	// too short to tell).
	ETA    float64
	HasETA bool
}

// estimate fits ports in use against time over samples (oldest first)
// and derives the time to exhaustion of a block of size ports. The growth
// must be at least HotspotMinGrowth and more than three times its
// standard error: noise around a flat line gives no estimate.
func estimate(samples []hotSample, size float64) Estimate {
	var e Estimate
	n := len(samples)
	if n == 0 {
		return e
	}
	last := samples[n-1]
	if first := samples[0]; n > 1 && first.serial == last.serial {
		if dt := last.at.Sub(first.at).Seconds(); dt > 0 {
			e.Created = float64(last.created-first.created) / dt
			e.Released = float64(uint32(last.released-first.released)) / dt
		}
	}
	if last.inUse >= size {
		e.ETA, e.HasETA = 0, true // exhausted now
	}
	if n < 2 {
		return e
	}
	t0 := samples[0].at
	var st, sy float64
	for _, s := range samples {
		st += s.at.Sub(t0).Seconds()
		sy += s.inUse
	}
	mt, my := st/float64(n), sy/float64(n)
	var stt, sty float64
	for _, s := range samples {
		dt := s.at.Sub(t0).Seconds() - mt
		stt += dt * dt
		sty += dt * (s.inUse - my)
	}
	if stt == 0 {
		return e
	}
	e.Growth = sty / stt
	if e.HasETA || n < HotspotMinSamples || e.Growth < HotspotMinGrowth {
		return e
	}
	var ssr float64
	for _, s := range samples {
		r := s.inUse - (my + e.Growth*(s.at.Sub(t0).Seconds()-mt))
		ssr += r * r
	}
	se := math.Sqrt(ssr / float64(n-2) / stt)
	if e.Growth <= 3*se {
		return e
	}
	e.ETA, e.HasETA = max(size-last.inUse, 0)/e.Growth, true
	return e
}

// hotTracker keeps the merged hot sets' history (management core).
type hotTracker struct {
	mu    sync.Mutex
	pairs map[portalloc.Key]*hotPair
	buf   []portalloc.HotEntry
}

// sample merges the workers' published hot sets into the history at now.
// A pair that left every set is forgotten.
func (h *hotTracker) sample(now time.Time, rt *lcore.Runtime) {
	if rt == nil {
		return
	}
	type merged struct {
		hotSample
		scope uint16
		size  uint32
	}
	cur := map[portalloc.Key]*merged{}
	for wi, w := range rt.Workers {
		var ok bool
		h.buf, ok = w.Counters.Hot.Load(h.buf[:0])
		if !ok {
			continue
		}
		for _, e := range h.buf {
			m := cur[e.Key]
			if m == nil {
				m = &merged{hotSample: hotSample{at: now}, scope: e.Scope}
				cur[e.Key] = m
			}
			m.inUse += float64(e.InUse)
			m.created += e.Created
			m.released += e.Released
			m.serial += uint64(e.Serial) << (wi % 32)
			m.size = max(m.size, e.Size)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pairs == nil {
		h.pairs = map[portalloc.Key]*hotPair{}
	}
	for k := range h.pairs {
		if cur[k] == nil {
			delete(h.pairs, k)
		}
	}
	for k, m := range cur {
		p := h.pairs[k]
		if p == nil {
			p = &hotPair{key: k}
			h.pairs[k] = p
		}
		p.scope, p.size = m.scope, m.size
		p.add(m.hotSample)
	}
}

// Hotspot is one pair as the tracker reports it.
type Hotspot struct {
	Key portalloc.Key
	// Pool and Scenario name the member's pool and scenario under the
	// running policy.
	Pool, Scenario string
	// InUse is the ports in use, Block the member's block size.
	InUse, Block int
	Estimate
	// Samples is how many samples the estimate used.
	Samples int
}

// Utilization returns InUse / Block.
func (h *Hotspot) Utilization() float64 {
	if h.Block <= 0 {
		return 0
	}
	return float64(h.InUse) / float64(h.Block)
}

// list returns every tracked pair with its estimate, most urgent first:
// pairs with an estimate by time to exhaustion, then the others by
// utilisation. Pool and block come from pol when it still maps the
// member, else from the worker's record.
func (h *hotTracker) list(pol *nat.Policy) []Hotspot {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Hotspot, 0, len(h.pairs))
	var win []hotSample
	for _, p := range h.pairs {
		win = p.window(win)
		if len(win) == 0 {
			continue
		}
		hs := Hotspot{Key: p.key, InUse: int(win[len(win)-1].inUse), Block: int(p.size), Samples: len(win)}
		scope := p.scope
		if pol != nil {
			if m, v := pol.Classify(p.key.Private); v == nat.VerdictForward && m.Scenario != nat.ScenarioInstance {
				scope = m.Scope
				hs.Scenario = m.Scenario.String()
				if m.Block.Public != 0 {
					hs.Block = m.Block.Size()
				}
			}
			hs.Pool = pol.PoolName(scope)
		}
		if hs.Scenario == "" {
			hs.Scenario = "pool"
			if scope == nat.ScopeDefault {
				hs.Scenario = "default"
			}
		}
		hs.Estimate = estimate(win, float64(hs.Block))
		out = append(out, hs)
	}
	sortHotspots(out)
	return out
}

// sortHotspots orders hotspots most urgent first: pairs with an estimate
// by time to exhaustion, then the others by utilisation.
func sortHotspots(hs []Hotspot) { slices.SortFunc(hs, compareHotspots) }

// compareHotspots orders hotspots most urgent first.
func compareHotspots(a, b Hotspot) int {
	switch {
	case a.HasETA && !b.HasETA:
		return -1
	case !a.HasETA && b.HasETA:
		return 1
	case a.HasETA && a.ETA != b.ETA:
		return cmp.Compare(a.ETA, b.ETA)
	}
	if c := cmp.Compare(b.Utilization(), a.Utilization()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Key.Private, b.Key.Private); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Key.Remote, b.Key.Remote); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Key.RemotePort, b.Key.RemotePort); c != 0 {
		return c
	}
	return cmp.Compare(a.Key.Proto, b.Key.Proto)
}

// HotspotEntry is one pair in HotspotsResponse.
type HotspotEntry struct {
	// Private is the member's address; Destination the remote
	// "address:port" (port 0 for ICMP echo).
	Private     string `json:"private"`
	Destination string `json:"destination"`
	Protocol    string `json:"protocol"`
	// Pool is the member's pool (default_snat for default SNAT); Scope
	// its scenario, "pool" or "default".
	Pool  string `json:"pool"`
	Scope string `json:"scope"`
	// PortsInUse of Block ports are taken towards the destination.
	PortsInUse  int     `json:"ports_in_use"`
	Block       int     `json:"block"`
	Utilization float64 `json:"utilization"`
	// GrowthPerSecond is the net growth of PortsInUse (least squares
	// over window_seconds); CreatedPerSecond and ReleasedPerSecond its
	// two sides.
	GrowthPerSecond   float64 `json:"growth_per_second"`
	CreatedPerSecond  float64 `json:"created_per_second"`
	ReleasedPerSecond float64 `json:"released_per_second"`
	// ETASeconds is the estimated time to exhaustion; null when the pair
	// is not growing or has too short a history.
	ETASeconds *float64 `json:"eta_seconds"`
	// Samples is the number of one-second samples behind the estimate.
	Samples int `json:"samples"`
}

// HotspotsResponse is the body of GET /v1/hotspots.
type HotspotsResponse struct {
	// WindowSeconds is the span the growth is estimated over.
	WindowSeconds float64        `json:"window_seconds"`
	Hotspots      []HotspotEntry `json:"hotspots"`
}

func hotspotEntry(h *Hotspot) HotspotEntry {
	e := HotspotEntry{
		Private:     nat.AddrFrom(h.Key.Private).String(),
		Destination: netip.AddrPortFrom(nat.AddrFrom(h.Key.Remote), h.Key.RemotePort).String(),
		Protocol:    nat.ProtoName(h.Key.Proto),
		Pool:        h.Pool, Scope: h.Scenario,
		PortsInUse: h.InUse, Block: h.Block, Utilization: h.Utilization(),
		GrowthPerSecond: h.Growth, CreatedPerSecond: h.Created, ReleasedPerSecond: h.Released,
		Samples: h.Samples,
	}
	if h.HasETA {
		eta := h.ETA
		e.ETASeconds = &eta
	}
	return e
}

// hotspots answers GET /v1/hotspots?limit=N.
func (s *Server) hotspots(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultHotspotsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHotspotsLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: %q is not a number from 1 to %d", v, MaxHotspotsLimit))
			return
		}
		limit = n
	}
	for k := range q {
		if k != "limit" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q (use limit)", k))
			return
		}
	}
	if !s.acquireQuery(w) {
		return
	}
	defer s.releaseQuery()
	resp := HotspotsResponse{WindowSeconds: HotspotWindow.Seconds(), Hotspots: []HotspotEntry{}}
	list := s.hot.list(s.o.Policy.Load())
	for i := range list[:min(limit, len(list))] {
		resp.Hotspots = append(resp.Hotspots, hotspotEntry(&list[i]))
	}
	writeJSON(w, http.StatusOK, resp)
}

// poolHotspots returns, per pool name, the smallest time to exhaustion
// (+Inf when no pair of the pool has one) and the highest utilisation of
// any tracked pair.
func (s *Server) poolHotspots(pol *nat.Policy) (eta, util map[string]float64) {
	eta, util = map[string]float64{}, map[string]float64{}
	for _, h := range s.hot.list(pol) {
		if _, ok := eta[h.Pool]; !ok {
			eta[h.Pool] = math.Inf(1)
		}
		if h.HasETA {
			eta[h.Pool] = min(eta[h.Pool], h.ETA)
		}
		util[h.Pool] = max(util[h.Pool], h.Utilization())
	}
	return eta, util
}
