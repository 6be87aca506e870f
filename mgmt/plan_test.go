package mgmt

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/mgmt/config/configtest"
)

// Issue 18 part 2: POST /v1/config/plan on the [S7] scenarios predicts
// exactly what the reload that follows reclaims.

// planConfig returns the appliance's configuration with blocks by tier
// (no ports_per_member), changed by each of mutate.
func planConfig(mutate ...func(*config.Config)) string {
	c := applianceConfig("4m", 0)
	for _, m := range mutate {
		m(c)
	}
	return string(configtest.Text(c))
}

// members18 gives pool web 18 members (the 1024-port tier), members66 66
// (past 50: the 512-port tier).
func members18(c *config.Config) {
	c.Pools[0].Members = []string{"10.0.1.4", "10.0.1.5", "10.0.2.0/28"}
}
func members66(c *config.Config) {
	c.Pools[0].Members = []string{"10.0.1.4", "10.0.1.5", "10.0.4.0/26"}
}

// moveToAPI moves 10.0.1.4 from pool web to a new pool api on its own
// frontend.
func moveToAPI(c *config.Config) {
	c.Frontends = append(c.Frontends, config.Frontend{Name: "fe2", Address: "198.19.1.30"})
	c.Pools[0].Members = c.Pools[0].Members[1:]
	c.Pools = append(c.Pools, config.Pool{Name: "api", Frontends: []string{"fe2"}, Members: []string{"10.0.1.4"}})
}

// reloadTo writes text to the appliance's configuration file, reloads it
// and waits until the worker has run under it for a while (its sweep
// done: a pass takes capacity/1024 polls).
func (a *appliance) reloadTo(t *testing.T, text string) {
	t.Helper()
	require.NoError(t, os.WriteFile(a.path, []byte(text), 0o600))
	st, b := a.do(t, http.MethodPost, "/v1/config/reload", nil, nil)
	require.Equal(t, http.StatusOK, st, "%s", b)
	a.waitPolls(t, 100)
}

// waitPolls waits until every worker polled n more times.
func (a *appliance) waitPolls(t *testing.T, n uint64) {
	t.Helper()
	for i, w := range a.rt.Workers {
		p0 := w.Counters.Polls.Load()
		eventually(t, func() bool { return w.Counters.Polls.Load() >= p0+n }, "worker %d stopped polling", i)
	}
}

// postPlan plans text and decodes the answer.
func (a *appliance) postPlan(t *testing.T, text string) PlanResponse {
	t.Helper()
	st, b := a.do(t, http.MethodPost, "/v1/config/plan", strings.NewReader(text), nil)
	require.Equal(t, http.StatusOK, st, "%s", b)
	var resp PlanResponse
	require.NoError(t, json.Unmarshal(b, &resp))
	return resp
}

func TestPlanPredictsReload(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to []func(*config.Config)
		check    func(t *testing.T, p PlanResponse)
	}{
		{"grow into the next tier", []func(*config.Config){members18}, []func(*config.Config){members66},
			func(t *testing.T, p PlanResponse) {
				assert.Positive(t, p.ReclaimedTotal, "flows on the upper halves of the blocks go")
				assert.Less(t, p.ReclaimedTotal, 300)
				require.NotEmpty(t, p.BlockChanges)
				for _, bc := range p.BlockChanges {
					if bc.Member == "10.0.1.4" {
						assert.Equal(t, "shrunk", bc.Change)
						assert.Equal(t, 512, int(bc.New.Last-bc.New.First)+1)
					}
				}
				require.Len(t, p.Pools, 1)
				assert.True(t, p.Pools[0].Tiered)
				require.NotNil(t, p.Pools[0].UntilNextTier)
				assert.Equal(t, 100-66, *p.Pools[0].UntilNextTier)
				assert.Equal(t, 256, *p.Pools[0].NextTierPorts)
				assert.Equal(t, 64512/512-66, p.Pools[0].UntilFrontendsFull)
			}},
		{"shrink into the previous tier", []func(*config.Config){members66}, []func(*config.Config){members18},
			func(t *testing.T, p PlanResponse) {
				assert.Zero(t, p.ReclaimedTotal, "blocks grow: every flow stays")
				for _, bc := range p.BlockChanges {
					if bc.Member == "10.0.1.4" || bc.Member == "10.0.1.5" {
						assert.NotEqual(t, "shrunk", bc.Change)
					}
				}
				assert.Equal(t, 50-18, *p.Pools[0].UntilNextTier)
			}},
		{"move a member to another pool", []func(*config.Config){members18}, []func(*config.Config){members18, moveToAPI},
			func(t *testing.T, p PlanResponse) {
				assert.Equal(t, 200, p.ReclaimedTotal, "every flow of 10.0.1.4")
				require.Len(t, p.Reclaimed, 1)
				assert.Equal(t, "web", p.Reclaimed[0].Pool)
				require.Len(t, p.Reclaimed[0].Sample, 5)
				for _, f := range p.Reclaimed[0].Sample {
					assert.True(t, strings.HasPrefix(f.Private, "10.0.1.4:"), f.Private)
				}
				assert.Contains(t, p.BlockChanges, PlanBlockChange{Member: "10.0.1.4", Change: "moved", OldPool: "web", NewPool: "api",
					Old: PlanBlock{Public: "198.19.1.10", First: 1024, Last: 2047}, New: &PlanBlock{Public: "198.19.1.30", First: 1024, Last: 2047}})
				assert.Contains(t, p.Connectivity, PlanConnectivity{Private: "10.0.1.4", Previous: "pool", Scenario: "pool", Pool: "api"})
			}},
		{"change only timeouts", []func(*config.Config){members18}, []func(*config.Config){members18, func(c *config.Config) { c.Timeouts.UDP = configtest.Duration("5m") }},
			func(t *testing.T, p PlanResponse) {
				assert.Zero(t, p.ReclaimedTotal)
				assert.Empty(t, p.BlockChanges)
				assert.Empty(t, p.Connectivity)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAppliance(t, applianceOptions{})
			a.reloadTo(t, planConfig(tc.from...))
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
			candidate := planConfig(tc.to...)
			p := a.postPlan(t, candidate)
			assert.Equal(t, 300, p.FlowsExamined)
			assert.Zero(t, p.FlowsSweeping)
			tc.check(t, p)

			before, _ := metricValue(a.metrics(t), "natgw_flows_expired_total", map[string]string{"reason": "reclaimed"})
			a.reloadTo(t, candidate)
			after, _ := metricValue(a.metrics(t), "natgw_flows_expired_total", map[string]string{"reason": "reclaimed"})
			assert.Equal(t, float64(p.ReclaimedTotal), after-before, "the reload reclaims what the plan predicted")
		})
	}
}

// TestPlanInvalid: an invalid candidate is answered 400 with every
// problem, like validate, and nothing is applied.
func TestPlanInvalid(t *testing.T) {
	a := newAppliance(t, applianceOptions{noStart: true})
	gen := a.policy.Load().Gen
	bad := planConfig(func(c *config.Config) {
		c.Pools[0].PortsPerMember = 7
		c.DefaultSNAT.Frontends = []string{"nope"}
	})
	st, b := a.do(t, http.MethodPost, "/v1/config/plan", strings.NewReader(bad), nil)
	require.Equal(t, http.StatusBadRequest, st, "%s", b)
	var e ErrorResponse
	require.NoError(t, json.Unmarshal(b, &e))
	assert.GreaterOrEqual(t, len(e.Errors), 2, "every problem: %v", e.Errors)
	assert.Equal(t, gen, a.policy.Load().Gen, "nothing applied")
}

// TestPlanAuth: plan needs the token like every /v1/ endpoint.
func TestPlanAuth(t *testing.T) {
	a := newAppliance(t, applianceOptions{noStart: true, token: "s3cret"})
	st, _ := a.do(t, http.MethodPost, "/v1/config/plan", strings.NewReader(planConfig()), nil)
	assert.Equal(t, http.StatusUnauthorized, st)
	st, b := a.do(t, http.MethodGet, "/v1/config/plan", nil, map[string]string{"Authorization": "Bearer s3cret"})
	assert.Equal(t, http.StatusMethodNotAllowed, st, "%s", b)
}
