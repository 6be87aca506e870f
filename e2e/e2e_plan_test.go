package e2e

// TestE2EPlan is issue 18 part 2's acceptance test on the testbed: real
// UDP flows through natgw, `natgw plan` of a configuration that grows the
// pool into the next tier (blocks halve, [S7]), then the real reload:
// the flows natgw_flows_expired_total{reason="reclaimed"} counts equal
// the prediction, which equals the flows whose public port lies in the
// cut half of the member's block.

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
)

func TestE2EPlan(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	cfg := e2eConfig{Driver: "afpacket", Workers: 1, Members: e2ePoolMembers} // 18 members: 1024 ports each
	r := tb.startRun(t, cfg)
	api := tb.api()

	const member = "10.0.1.4"
	flows := tb.openUDPFlows(t, member, netip.MustParseAddrPort(e2eServer+":9000"), 150)
	seen, errs := exchangeAll(flows, 3, time.Second)
	for i, err := range errs {
		require.NoError(t, err, "flow %d", i)
	}
	m := api.mapping(t, member)
	require.NotNil(t, m.Ports)
	require.Equal(t, 1024, int(m.Ports.Last-m.Ports.First)+1)
	// The flows on the upper half of the block, which a 512-port block
	// loses: the test's own and any other flow of the member (the
	// testbed's readiness checks), as natgw's flow list shows them.
	cut, mine := 0, 0
	for _, f := range api.flows(t, member) {
		if netip.MustParseAddrPort(f.Public).Port() > m.Ports.First+511 {
			cut++
		}
	}
	for _, s := range seen {
		if s.Port() > m.Ports.First+511 {
			mine++
		}
	}
	require.Positive(t, mine, "some of the test's flows hold ports of the upper half: %v", seen)
	require.GreaterOrEqual(t, cut, mine, "natgw lists every flow the test made")

	grown := cfg
	grown.Members = append(append([]string(nil), e2ePoolMembers...), "10.0.4.0/26") // 66 members: 512 ports
	next := r.config + ".new"
	writeConfig(t, next, grown)
	out, err := tb.run(20*time.Second, "gw", tb.natgw, "plan", "--config", next, "--mgmt", e2eMgmtURL, "--json")
	require.NoError(t, err, out)
	var plan mgmt.PlanResponse
	require.NoError(t, json.Unmarshal([]byte(out), &plan), out)
	assert.Equal(t, cut, plan.ReclaimedTotal, "the plan counts the flows on the cut half")
	assert.Zero(t, plan.FlowsSweeping)
	text, err := tb.run(20*time.Second, "gw", tb.natgw, "plan", "--config", next, "--mgmt", e2eMgmtURL)
	require.NoError(t, err, text)
	t.Logf("natgw plan:\n%s", text)

	m0 := api.scrape(t).sum("natgw_flows_expired_total", "reason", "reclaimed")
	writeConfig(t, r.config, grown)
	st, body := api.reload(t)
	require.Equal(t, http.StatusOK, st, "%s", body)
	_, err = api.waitMetric(10*time.Second, func(v float64) bool { return v >= m0+float64(plan.ReclaimedTotal) },
		"natgw_flows_expired_total", "reason", "reclaimed")
	require.NoError(t, err)
	time.Sleep(time.Second) // a sweep pass takes a few ms: let any excess show
	got := api.scrape(t).sum("natgw_flows_expired_total", "reason", "reclaimed") - m0
	assert.Equal(t, float64(plan.ReclaimedTotal), got, "the reload reclaims what the plan predicted")
}
