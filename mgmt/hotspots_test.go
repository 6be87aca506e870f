package mgmt

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/portalloc"
)

// HotspotTolerance is the relative error of the time to exhaustion that
// docs/OPERATIONS.md states for ramps that are not steady (bursty, noisy),
// once the window holds 30 s of history; steady ramps are exact.
const hotspotTolerance = 0.25

// ramp evaluates the estimator on a scripted series of ports in use (one
// sample a second, seconds 0..end) and returns, for each second from on,
// the estimate and the true time to exhaustion at the series' mean rate
// (rate ports/s; 0 for series that don't grow).
func ramp(series func(sec int) float64, block float64, rate float64, on, end int) (ests []Estimate, truth []float64) {
	var p hotPair
	t0 := time.Unix(1e9, 0)
	var win []hotSample
	for s := 0; s <= end; s++ {
		p.add(hotSample{at: t0.Add(time.Duration(s) * time.Second), inUse: series(s), serial: 1})
		if s < on {
			continue
		}
		win = p.window(win)
		ests = append(ests, estimate(win, block))
		if rate > 0 {
			truth = append(truth, (block-series(s))/rate)
		}
	}
	return ests, truth
}

// worstError returns the largest relative error of the estimates against
// truth; every estimate must have an ETA.
func worstError(t *testing.T, ests []Estimate, truth []float64) float64 {
	t.Helper()
	worst := 0.0
	for i, e := range ests {
		require.True(t, e.HasETA, "sample %d: no estimate (growth %.3f)", i, e.Growth)
		worst = max(worst, math.Abs(e.ETA-truth[i])/truth[i])
	}
	return worst
}

func TestEstimateSteadyRamp(t *testing.T) {
	// 4 ports a second into a 2016-port block.
	series := func(s int) float64 { return 50 + 4*float64(s) }
	ests, truth := ramp(series, 2016, 4, HotspotMinSamples-1, 400)
	worst := worstError(t, ests, truth)
	t.Logf("steady ramp: worst relative ETA error %.2g", worst)
	assert.Less(t, worst, 1e-6)
	// Early on: too few samples for an estimate.
	early, _ := ramp(series, 2016, 4, 0, HotspotMinSamples-2)
	for _, e := range early {
		assert.False(t, e.HasETA)
	}
}

func TestEstimateBurstyRamp(t *testing.T) {
	// 20 flows at once every 5 s: 4 ports a second on average.
	series := func(s int) float64 { return 50 + 20*float64(s/5) }
	ests, truth := ramp(series, 2016, 4, int(HotspotWindow/time.Second), 450)
	worst := worstError(t, ests, truth)
	t.Logf("bursty ramp (20 every 5 s): worst relative ETA error %.3f", worst)
	assert.Less(t, worst, hotspotTolerance)

	// 60 flows every 15 s, same mean: coarser bursts.
	series = func(s int) float64 { return 50 + 60*float64(s/15) }
	ests, truth = ramp(series, 2016, 4, int(HotspotWindow/time.Second), 450)
	worst = worstError(t, ests, truth)
	t.Logf("bursty ramp (60 every 15 s): worst relative ETA error %.3f", worst)
	assert.Less(t, worst, hotspotTolerance)
}

func TestEstimateNoisyRamp(t *testing.T) {
	// Each second 3..9 flows created (mean 6) and 1..3 released (mean
	// 2): a net 4 ports a second with churn, per-second sd 2.1.
	r := rand.New(rand.NewPCG(3, 4))
	vals := []float64{50}
	for range 500 {
		vals = append(vals, vals[len(vals)-1]+float64(3+r.IntN(7))-float64(1+r.IntN(3)))
	}
	series := func(s int) float64 { return vals[s] }
	w := int(HotspotWindow / time.Second)
	ests, truth := ramp(series, 4032, 4, w, 450)
	// Against the mean rate, the error is the sampling error of the rate
	// over one window (sd about 2.1 * sqrt(1.2/31) = 0.41 ports/s here).
	worst := worstError(t, ests, truth)
	t.Logf("noisy ramp: worst relative ETA error against the mean rate %.3f", worst)
	assert.Less(t, worst, 2*hotspotTolerance)
	// Against the growth the window actually saw, the stated tolerance.
	for i := range truth {
		s := w + i
		truth[i] = (4032 - vals[s]) / ((vals[s] - vals[s-w]) / float64(w))
	}
	worst = worstError(t, ests, truth)
	t.Logf("noisy ramp: worst relative ETA error against the window's growth %.3f", worst)
	assert.Less(t, worst, hotspotTolerance)
}

func TestEstimateFlatAndShrinking(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	noise := make([]float64, 600)
	for i := range noise {
		noise[i] = float64(r.IntN(11)) - 5
	}
	cases := []struct {
		name   string
		series func(s int) float64
		from   int
	}{
		{"flat", func(s int) float64 { return 700 }, 0},
		{"noisy", func(s int) float64 { return 700 + noise[s] }, 0},
		{"shrinking", func(s int) float64 { return 1500 - 3*float64(s) }, 0},
		// Up 30 a second for 9 s, then back: real growth within a
		// period, none over a window of three.
		{"sawtooth", func(s int) float64 { return 700 + 30*float64(s%10) }, int(HotspotWindow / time.Second)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ests, _ := ramp(c.series, 2016, 0, c.from, 450)
			for i, e := range ests {
				require.False(t, e.HasETA, "second %d: ETA %.0f s from growth %.3f", i, e.ETA, e.Growth)
			}
		})
	}
}

func TestEstimateExhausted(t *testing.T) {
	ests, _ := ramp(func(s int) float64 { return 64 }, 64, 0, 0, 10)
	for _, e := range ests {
		require.True(t, e.HasETA)
		assert.Zero(t, e.ETA)
	}
}

func TestEstimateRates(t *testing.T) {
	// Created 10/s, released 6/s: in use grows 4/s.
	var p hotPair
	t0 := time.Unix(1e9, 0)
	for s := range 20 {
		p.add(hotSample{at: t0.Add(time.Duration(s) * time.Second), inUse: 100 + 4*float64(s),
			created: uint64(500 + 10*s), released: uint64(400 + 6*s), serial: 7})
	}
	e := estimate(p.window(nil), 1000)
	assert.InDelta(t, 10, e.Created, 1e-9)
	assert.InDelta(t, 6, e.Released, 1e-9)
	assert.InDelta(t, 4, e.Growth, 1e-9)
	require.True(t, e.HasETA)
	assert.InDelta(t, (1000-176)/4.0, e.ETA, 1e-6)
}

// TestHotspotsEndpoint ramps one member's flows to one destination on the
// fake dataplane, sampling once a (fake) second, and checks that the API
// ranks it first with the time to exhaustion of its ramp, ahead of a flat
// pair, and that the metric carries it.
func TestHotspotsEndpoint(t *testing.T) {
	a := newAppliance(t, applianceOptions{ppm: 1008, udp: "1h"})
	sent := 0
	// A flat pair: 300 flows of the other member, all at once.
	for i := range 300 {
		a.sendUDP("10.0.1.5", "198.18.0.20", uint16(10000+i), 53)
	}
	eventually(t, func() bool { return a.sentUDP(&sent) == 300 }, "flat flows: %d passed", sent)
	now := time.Now()
	const perSecond = 6
	for s := range 20 {
		for i := range perSecond {
			a.sendUDP("10.0.1.4", "198.18.0.10", uint16(20000+s*perSecond+i), 443)
		}
		want := 300 + (s+1)*perSecond
		eventually(t, func() bool { return a.sentUDP(&sent) == want }, "ramp flows: %d of %d passed", sent, want)
		// Let the worker publish its hot set (it publishes when idle).
		eventually(t, func() bool {
			got, _ := a.rt.Workers[0].Counters.Hot.Load(nil)
			for _, e := range got {
				if e.Key.RemotePort == 443 && int(e.InUse) == (s+1)*perSecond {
					return true
				}
			}
			return false
		}, "hot set not published")
		a.srv.Maintain(now.Add(time.Duration(s) * time.Second))
	}
	var resp HotspotsResponse
	a.getJSON(t, "/v1/hotspots?limit=5", http.StatusOK, &resp)
	require.Len(t, resp.Hotspots, 2)
	top := resp.Hotspots[0]
	assert.Equal(t, "10.0.1.4", top.Private)
	assert.Equal(t, "198.18.0.10:443", top.Destination)
	assert.Equal(t, "udp", top.Protocol)
	assert.Equal(t, "web", top.Pool)
	assert.Equal(t, "pool", top.Scope)
	assert.Equal(t, 120, top.PortsInUse)
	assert.Equal(t, 1008, top.Block)
	assert.InDelta(t, perSecond, top.GrowthPerSecond, 1e-6)
	require.NotNil(t, top.ETASeconds)
	assert.InDelta(t, float64(1008-120)/perSecond, *top.ETASeconds, 1e-6)
	flat := resp.Hotspots[1]
	assert.Equal(t, "10.0.1.5", flat.Private)
	assert.Nil(t, flat.ETASeconds, "a flat pair has no estimate")
	assert.Equal(t, 300, flat.PortsInUse)

	fams := a.metrics(t)
	eta, ok := metricValue(fams, "natgw_snat_exhaustion_eta_seconds", map[string]string{"pool": "web"})
	require.True(t, ok)
	assert.InDelta(t, float64(1008-120)/perSecond, eta, 1e-6)
	eta, ok = metricValue(fams, "natgw_snat_exhaustion_eta_seconds", map[string]string{"pool": "default_snat"})
	require.True(t, ok)
	assert.True(t, math.IsInf(eta, 1), "no growing pair: +Inf")
	util, _ := metricValue(fams, "natgw_snat_port_utilization_max", map[string]string{"pool": "web"})
	assert.InDelta(t, 300.0/1008, util, 1e-9, "the hot sets' utilisation, before any scan pass")

	var one HotspotsResponse
	a.getJSON(t, "/v1/hotspots?limit=1", http.StatusOK, &one)
	require.Len(t, one.Hotspots, 1)
	assert.Equal(t, top, one.Hotspots[0])
}

func TestHotspotsBadInput(t *testing.T) {
	a := newAppliance(t, applianceOptions{token: "s3cret"})
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	for _, q := range []string{"?limit=0", "?limit=-1", "?limit=1001", "?limit=x", "?limit=99999999999999999999", "?top=3"} {
		st, b := a.do(t, http.MethodGet, "/v1/hotspots"+q, nil, auth)
		assert.Equal(t, http.StatusBadRequest, st, "%s: %s", q, b)
		assert.True(t, strings.Contains(string(b), "error"))
	}
	st, _ := a.do(t, http.MethodGet, "/v1/hotspots", nil, nil)
	assert.Equal(t, http.StatusUnauthorized, st)
	st, _ = a.do(t, http.MethodPost, "/v1/hotspots", nil, auth)
	assert.Equal(t, http.StatusMethodNotAllowed, st)
	st, b := a.do(t, http.MethodGet, "/v1/hotspots", nil, auth)
	assert.Equal(t, http.StatusOK, st, "%s", b)
	// The concurrency bound: with every query token taken, 429.
	for range MaxConcurrentQueries {
		a.srv.queries <- struct{}{}
	}
	st, _ = a.do(t, http.MethodGet, "/v1/hotspots", nil, auth)
	assert.Equal(t, http.StatusTooManyRequests, st)
	for range MaxConcurrentQueries {
		<-a.srv.queries
	}
}

func TestHotspotOrder(t *testing.T) {
	k := func(i uint32) portalloc.Key { return portalloc.Key{Private: i} }
	hs := []Hotspot{
		{Key: k(1), InUse: 90, Block: 100},
		{Key: k(2), InUse: 10, Block: 100, Estimate: Estimate{ETA: 500, HasETA: true}},
		{Key: k(3), InUse: 50, Block: 100, Estimate: Estimate{ETA: 20, HasETA: true}},
		{Key: k(4), InUse: 95, Block: 100},
	}
	sortHotspots(hs)
	var order []uint32
	for _, h := range hs {
		order = append(order, h.Key.Private)
	}
	assert.Equal(t, []uint32{3, 2, 4, 1}, order)
}
