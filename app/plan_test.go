package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
)

// planAPI answers POST /v1/config/plan with a fixed plan (400 when the
// body says "invalid") and POST /v1/config/reload, and records the
// requests with their bodies.
func planAPI(t *testing.T) (*httptest.Server, *[]string) {
	var seen []string
	ten, p256 := 34, 256
	plan := mgmt.PlanResponse{Generation: 3,
		BlockChanges: []mgmt.PlanBlockChange{{Member: "10.0.1.4", Change: "shrunk", OldPool: "web", NewPool: "web",
			Old: mgmt.PlanBlock{Public: "198.19.1.10", First: 1024, Last: 2047}, New: &mgmt.PlanBlock{Public: "198.19.1.10", First: 1024, Last: 1535}}},
		FlowsExamined: 300, ReclaimedTotal: 97,
		Reclaimed: []mgmt.PlanReclaim{{Pool: "web", Flows: 97, Sample: []mgmt.FlowEntry{{Protocol: "udp",
			Private: "10.0.1.4:10003", Public: "198.19.1.10:1800", Remote: "198.18.0.10:53"}}}},
		Connectivity:      []mgmt.PlanConnectivity{{Private: "10.0.4.9", Previous: "none", Scenario: "pool", Pool: "web"}},
		NewDefaultSources: []string{},
		Pools:             []mgmt.PlanHeadroom{{Pool: "web", Members: 66, PortsPerMember: 512, Tiered: true, UntilNextTier: &ten, NextTierPorts: &p256, UntilFrontendsFull: 60}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(body))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/config/plan" && strings.Contains(string(body), "invalid"):
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(mgmt.ErrorResponse{Error: "the candidate configuration is invalid",
				Errors: []string{"timeouts.udp: bad", "pool[0].members: empty"}})
		case r.URL.Path == "/v1/config/plan":
			json.NewEncoder(w).Encode(plan)
		case r.URL.Path == "/v1/config/reload":
			json.NewEncoder(w).Encode(mgmt.ReloadResponse{Generation: 4})
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(mgmt.ErrorResponse{Error: "no such endpoint"})
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestPlanCommand(t *testing.T) {
	srv, seen := planAPI(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "new.toml")
	require.NoError(t, os.WriteFile(good, []byte("# candidate\n"), 0o600))
	bad := filepath.Join(dir, "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte("invalid\n"), 0o600))

	var out, errOut bytes.Buffer
	code := run([]string{"plan", "--config", good, "--mgmt", srv.URL}, &out, &errOut)
	require.Equal(t, exitOK, code, "%s", errOut.String())
	for _, s := range []string{"generation 3", "10.0.1.4", "shrunk", "198.19.1.10:1024-2047", "198.19.1.10:1024-1535",
		"reclaim: 97 of 300", "pool web", "10.0.1.4:10003", "none (first connectivity)", "34 members (then 256 ports each)", "60 members"} {
		assert.Contains(t, out.String(), s)
	}
	assert.Equal(t, []string{"POST /v1/config/plan # candidate\n"}, *seen, "the file is sent as it is")

	out.Reset()
	code = run([]string{"plan", "--config", good, "--mgmt", srv.URL, "--json"}, &out, &errOut)
	require.Equal(t, exitOK, code)
	var p mgmt.PlanResponse
	require.NoError(t, json.Unmarshal(out.Bytes(), &p))
	assert.Equal(t, 97, p.ReclaimedTotal)

	errOut.Reset()
	code = run([]string{"plan", "--config", bad, "--mgmt", srv.URL}, &out, &errOut)
	assert.Equal(t, exitFail, code)
	assert.Contains(t, errOut.String(), "timeouts.udp: bad")
	assert.Contains(t, errOut.String(), "pool[0].members: empty")

	assert.Equal(t, exitUsage, run([]string{"plan", "--mgmt", srv.URL}, &out, &errOut), "--config is required")
}

// setStdin makes ctl reload see a terminal (or not) with answer typed.
func setStdin(t *testing.T, terminal bool, answer string) {
	oldIn, oldTerm := ctlStdin, stdinIsTerminal
	t.Cleanup(func() { ctlStdin, stdinIsTerminal = oldIn, oldTerm })
	ctlStdin = strings.NewReader(answer)
	stdinIsTerminal = func() bool { return terminal }
}

func TestCtlReloadAsks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		terminal bool
		answer   string
		args     []string
		want     int
		requests []string
		out      string
	}{
		{"terminal, yes", true, "y\n", nil, exitOK, []string{"POST /v1/config/plan ", "POST /v1/config/reload "}, "configuration reloaded: generation 4"},
		{"terminal, no", true, "n\n", nil, exitFail, []string{"POST /v1/config/plan "}, "not reloaded"},
		{"terminal, nothing typed", true, "", nil, exitFail, []string{"POST /v1/config/plan "}, "not reloaded"},
		{"terminal, --yes", true, "", []string{"--yes"}, exitOK, []string{"POST /v1/config/reload "}, "generation 4"},
		{"not a terminal: at once, as before", false, "", nil, exitOK, []string{"POST /v1/config/reload "}, "generation 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, seen := planAPI(t)
			setStdin(t, tc.terminal, tc.answer)
			var out, errOut bytes.Buffer
			code := run(append([]string{"ctl", "--mgmt", srv.URL, "reload"}, tc.args...), &out, &errOut)
			assert.Equal(t, tc.want, code, "%s%s", out.String(), errOut.String())
			assert.Equal(t, tc.requests, *seen)
			assert.Contains(t, out.String(), tc.out)
			if tc.terminal && len(tc.args) == 0 {
				assert.Contains(t, out.String(), "reclaim: 97 of 300", "the plan is shown before the question")
			}
		})
	}
}
