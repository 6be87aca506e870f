package e2e

// TestE2EHotspots is the end-to-end acceptance of issue 18 part 1 on the
// testbed: a pool member ramps UDP flows (real sockets, the echo server)
// to one destination at a steady pace while another holds a flat set of
// flows; GET /v1/hotspots and natgw ctl top --json rank the ramping pair
// first, with its growth and a time to exhaustion within the tolerance
// docs/OPERATIONS.md states (25%), and the flat pair without an estimate.

import (
	"encoding/json"
	"math"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
)

// hotspotTolerance is the relative error docs/OPERATIONS.md states for
// the time to exhaustion of growth steady over the last 30 s.
const e2eHotspotTolerance = 0.25

func TestE2EHotspots(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	for _, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) { hotspotsRamp(t, tb, driver) })
	}
}

// hotspotsRamp: 512-port blocks; 10.0.1.5 opens 40 flows to
// 198.18.0.11:9000 at once and keeps them; 10.0.1.4 then opens 5 flows a
// second to 198.18.0.10:9000 for 36 s.
func hotspotsRamp(t *testing.T, tb *testbed, driver string) {
	const (
		block    = 512
		perSec   = 5
		seconds  = 36
		ramper   = "10.0.1.4"
		flatMemb = "10.0.1.5"
	)
	cfg := e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers, PortsPerMember: block, UDP: "4m"}
	r := tb.startRun(t, cfg)
	api := tb.api()
	rampDst := netip.MustParseAddrPort(e2eServer + ":9000")
	flatDst := netip.MustParseAddrPort("198.18.0.11:9000")

	flat := tb.openUDPFlows(t, flatMemb, flatDst, 40)
	_, errs := exchangeAll(flat, 3, time.Second)
	for i, err := range errs {
		require.NoError(t, err, "flat flow %d", i)
	}

	// The ramp: flow i opens at start + i/perSec; each is confirmed by an
	// echo, so it is in natgw's table when its time is recorded.
	var opened []time.Time
	start := time.Now()
	for i := range perSec * seconds {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / perSec)))
		f := tb.openUDPFlows(t, ramper, rampDst, 1)[0]
		_, _, err := f.exchange(3, time.Second)
		require.NoError(t, err, "ramp flow %d", i)
		opened = append(opened, time.Now())
	}
	n := len(opened)
	// The growth the last 30 s saw, from the test's own clock.
	from := 0
	for from < n && opened[n-1].Sub(opened[from]) > mgmt.HotspotWindow {
		from++
	}
	rate := float64(n-1-from) / opened[n-1].Sub(opened[from]).Seconds()
	// One more sample after the last flow.
	time.Sleep(1500 * time.Millisecond)
	wantETA := float64(block-n) / rate
	t.Logf("%s: %d flows at %.2f/s over the last 30 s: ETA should be %.1f s", driver, n, rate, wantETA)

	check := func(t *testing.T, resp mgmt.HotspotsResponse) {
		require.GreaterOrEqual(t, len(resp.Hotspots), 2, "%+v", resp)
		top := resp.Hotspots[0]
		t.Logf("first: %+v eta=%v", top, fmtETA(top.ETASeconds))
		assert.Equal(t, ramper, top.Private)
		assert.Equal(t, rampDst.String(), top.Destination)
		assert.Equal(t, "udp", top.Protocol)
		assert.Equal(t, "web", top.Pool)
		assert.Equal(t, "pool", top.Scope)
		assert.Equal(t, block, top.Block)
		assert.Equal(t, n, top.PortsInUse)
		assert.InEpsilon(t, rate, top.GrowthPerSecond, e2eHotspotTolerance, "growth")
		if assert.NotNil(t, top.ETASeconds, "the ramping pair has an estimate") {
			assert.InEpsilon(t, wantETA, *top.ETASeconds, e2eHotspotTolerance, "time to exhaustion")
		}
		for _, h := range resp.Hotspots[1:] {
			if h.Private == flatMemb && h.Destination == flatDst.String() {
				assert.Equal(t, 40, h.PortsInUse)
				assert.Nil(t, h.ETASeconds, "the flat pair has no estimate: %v", fmtETA(h.ETASeconds))
				return
			}
		}
		t.Errorf("the flat pair %s -> %s is not listed", flatMemb, flatDst)
	}
	t.Run("GET /v1/hotspots", func(t *testing.T) {
		var resp mgmt.HotspotsResponse
		api.getJSON(t, "/v1/hotspots?limit=10", &resp)
		check(t, resp)
	})
	t.Run("natgw ctl top --json", func(t *testing.T) {
		out, err := r.tb.run(10*time.Second, "gw", r.tb.natgw, "ctl", "top", "--json", "--limit", "10")
		require.NoError(t, err, out)
		var resp mgmt.HotspotsResponse
		require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
		check(t, resp)
	})
	t.Run("natgw_snat_exhaustion_eta_seconds", func(t *testing.T) {
		m := api.scrape(t)
		eta := m.sum("natgw_snat_exhaustion_eta_seconds", "pool", "web")
		assert.InEpsilon(t, wantETA, eta, e2eHotspotTolerance)
		assert.True(t, math.IsInf(m.sum("natgw_snat_exhaustion_eta_seconds", "pool", "default_snat"), 1))
	})
	t.Run("bad limit", func(t *testing.T) {
		st, body, err := api.do(http.MethodGet, "/v1/hotspots?limit=0")
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, st, "%s", body)
	})
	t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
}

// fmtETA renders an estimate for the test's log ("-" for none).
func fmtETA(eta *float64) string {
	if eta == nil {
		return "-"
	}
	return (time.Duration(*eta * float64(time.Second))).Round(time.Second).String()
}
