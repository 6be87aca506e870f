package mgmt

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/mgmt/config/configtest"
)

// Issue 19 parts 2 and 3 through the API: plan predicts draining, the
// reload drains instead of reclaiming, the deadline reclaims and counts;
// a frontend drained at run time.

func reclaimDrain(c *config.Config) {
	c.Reload = config.Reload{Reclaim: config.ReclaimDrain, ReclaimDeadline: configtest.Duration("1m")}
}

// send300 sends 300 UDP flows (200 of 10.0.1.4, 100 of 10.0.1.5) and
// waits until they all went out.
func (a *appliance) send300(t *testing.T) {
	t.Helper()
	sent := 0
	for i := range 300 {
		src := "10.0.1.4"
		if i >= 200 {
			src = "10.0.1.5"
		}
		a.sendUDP(src, "198.18.0.10", uint16(10000+i), 53)
		if i%50 == 49 {
			eventually(t, func() bool { return a.sentUDP(&sent) == i+1 }, "%d flows should pass, %d did", i+1, sent)
		}
	}
}

func (a *appliance) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := metricValue(a.metrics(t), name, labels)
	return v
}

func TestPlanPredictsDrain(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	a.reloadTo(t, planConfig(members18, reclaimDrain))
	a.send300(t)
	candidate := planConfig(members66, reclaimDrain)
	p := a.postPlan(t, candidate)
	assert.Zero(t, p.ReclaimedTotal, "flows drain, none is reclaimed at the reload")
	assert.Positive(t, p.DrainingTotal)
	assert.Less(t, p.DrainingTotal, 300)
	assert.Equal(t, "1m0s", p.DrainDeadline)
	require.NotEmpty(t, p.Draining)
	assert.Equal(t, "web", p.Draining[0].Pool)

	reclaimed := map[string]string{"reason": "reclaimed"}
	before := a.metric(t, "natgw_flows_expired_total", reclaimed)
	a.reloadTo(t, candidate)
	assert.Equal(t, before, a.metric(t, "natgw_flows_expired_total", reclaimed), "nothing cut at the reload")
	assert.Equal(t, float64(p.DrainingTotal), a.metric(t, "natgw_flows_draining", map[string]string{"worker": "0"}))

	// The deadline passes: the draining flows are reclaimed and counted.
	a.clock.advance(61 * time.Second)
	eventually(t, func() bool {
		return a.metric(t, "natgw_flows_draining", map[string]string{"worker": "0"}) == 0
	}, "the draining flows outlived their deadline")
	assert.Equal(t, float64(p.DrainingTotal), a.metric(t, "natgw_flows_drained_total", map[string]string{"outcome": "deadline"}))
	assert.Equal(t, before+float64(p.DrainingTotal), a.metric(t, "natgw_flows_expired_total", reclaimed))
}

// twoFrontends gives pool web a second frontend, fe2, after fe1.
func twoFrontends(c *config.Config) {
	c.Frontends = append(c.Frontends, config.Frontend{Name: "fe2", Address: "198.19.1.30"})
	c.Pools[0].Frontends = []string{"fe1", "fe2"}
}

func TestDrainFrontendAPI(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	file := planConfig(members18, twoFrontends)
	a.reloadTo(t, file)
	a.send300(t)
	public := func(priv string) string {
		var m MappingResponse
		a.getJSON(t, "/v1/mappings/"+priv, http.StatusOK, &m)
		require.NotNil(t, m.Public)
		return *m.Public
	}
	require.Equal(t, "198.19.1.10", public("10.0.1.4"))

	st, b := a.do(t, http.MethodPost, "/v1/frontends/fe1/drain", nil, nil)
	require.Equal(t, http.StatusOK, st, "%s", b)
	var r DrainFrontendResponse
	require.NoError(t, json.Unmarshal(b, &r))
	assert.True(t, r.Draining)
	assert.Empty(t, r.Stuck, "18 members fit on fe2")
	a.waitPolls(t, 100)
	assert.Equal(t, "198.19.1.30", public("10.0.1.4"), "new flows go to the other frontend")
	reclaimed := map[string]string{"reason": "reclaimed"}
	assert.Zero(t, a.metric(t, "natgw_flows_expired_total", reclaimed))
	assert.Equal(t, 300.0, a.metric(t, "natgw_flows_draining", map[string]string{"worker": "0"}))

	// A reload of the file, which does not say drain, keeps the run-time
	// drain.
	a.reloadTo(t, file)
	assert.Equal(t, "198.19.1.30", public("10.0.1.4"))
	assert.Equal(t, 300.0, a.metric(t, "natgw_flows_draining", map[string]string{"worker": "0"}))
	assert.Equal(t, []string{"fe1"}, a.srv.o.Reloader.RuntimeDrains())

	st, _ = a.do(t, http.MethodPost, "/v1/frontends/nope/drain", nil, nil)
	assert.Equal(t, http.StatusNotFound, st)
	st, b = a.do(t, http.MethodPost, "/v1/frontends/fe-default/drain", nil, nil)
	assert.Equal(t, http.StatusBadRequest, st, "%s", b)
	assert.Contains(t, string(b), "default_snat.frontends")

	// The flows idle out (udp 4m, before the 5m deadline); then a reload
	// that removes fe1 cuts nothing and forgets the drain.
	a.clock.advance(4*time.Minute + 30*time.Second)
	eventually(t, func() bool {
		return a.metric(t, "natgw_flows_draining", map[string]string{"worker": "0"}) == 0
	}, "the draining flows never idled out")
	assert.Equal(t, 300.0, a.metric(t, "natgw_flows_drained_total", map[string]string{"outcome": "idle"}))
	c := applianceConfig("4m", 0)
	members18(c)
	twoFrontends(c)
	c.Frontends = c.Frontends[1:] // fe1 leaves
	c.Pools[0].Frontends = []string{"fe2"}
	require.NoError(t, os.WriteFile(a.path, configtest.Text(c), 0o600))
	st, b = a.do(t, http.MethodPost, "/v1/config/reload", nil, nil)
	require.Equal(t, http.StatusOK, st, "%s", b)
	a.waitPolls(t, 100)
	assert.Zero(t, a.metric(t, "natgw_flows_expired_total", reclaimed))
	assert.Empty(t, a.srv.o.Reloader.RuntimeDrains())
}

// Cancelling a run-time drain; a file drain can't be cancelled at run
// time.
func TestUndrainFrontend(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	a.reloadTo(t, planConfig(members18, twoFrontends))
	st, b := a.do(t, http.MethodPost, "/v1/frontends/fe1/drain", nil, nil)
	require.Equal(t, http.StatusOK, st, "%s", b)
	st, b = a.do(t, http.MethodPost, "/v1/frontends/fe1/undrain", nil, nil)
	require.Equal(t, http.StatusOK, st, "%s", b)
	assert.Empty(t, a.srv.o.Reloader.RuntimeDrains())
	assert.Empty(t, a.policy.Load().DrainingFrontends())

	a.reloadTo(t, planConfig(members18, twoFrontends, func(c *config.Config) { c.Frontends[0].Drain = true }))
	assert.Len(t, a.policy.Load().DrainingFrontends(), 1)
	st, b = a.do(t, http.MethodPost, "/v1/frontends/fe1/undrain", nil, nil)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Contains(t, string(b), "by the configuration file")
}
