package mgmt

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEndpoints checks the contract of every endpoint of SPEC §6, good
// and bad requests alike: the status, and a JSON body with the documented
// keys (an {"error"} body for every 4xx/5xx).
func TestEndpoints(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	big := strings.Repeat("x", MaxBodyBytes+1)
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		want     int
		wantKeys []string
	}{
		{"healthz", "GET", "/healthz", "", 200, []string{"status"}},
		{"readyz", "GET", "/readyz", "", 200, []string{"status"}},
		{"status", "GET", "/v1/status", "", 200, []string{"version", "driver", "uptime_seconds", "config_generation", "config_source", "ports", "workers"}},
		{"mapping of a pool member", "GET", "/v1/mappings/10.0.1.4", "", 200, []string{"private", "scenario", "pool", "public", "ports", "flows", "ports_in_use"}},
		{"mapping of an instance", "GET", "/v1/mappings/10.0.3.7", "", 200, []string{"private", "scenario", "public", "ports"}},
		{"mapping of a default-SNAT source", "GET", "/v1/mappings/10.0.9.9", "", 200, []string{"scenario", "public", "ports"}},
		{"mapping without scenario", "GET", "/v1/mappings/192.168.1.1", "", 404, []string{"error"}},
		{"mapping of a malformed address", "GET", "/v1/mappings/10.0.1.256", "", 400, []string{"error"}},
		{"mapping of words", "GET", "/v1/mappings/hello", "", 400, []string{"error"}},
		{"mapping of an IPv6 address", "GET", "/v1/mappings/::1", "", 400, []string{"error"}},
		{"mapping without address", "GET", "/v1/mappings/", "", 404, []string{"error"}},
		{"mapping with extra path", "GET", "/v1/mappings/10.0.1.4/x", "", 404, []string{"error"}},
		{"flows", "GET", "/v1/flows", "", 200, []string{"flows"}},
		{"flows of an address", "GET", "/v1/flows?private=10.0.1.4&limit=10", "", 200, []string{"flows"}},
		{"flows of a malformed address", "GET", "/v1/flows?private=10.1", "", 400, []string{"error"}},
		{"flows with limit 0", "GET", "/v1/flows?limit=0", "", 400, []string{"error"}},
		{"flows with a huge limit", "GET", "/v1/flows?limit=99999999999999999999", "", 400, []string{"error"}},
		{"flows with an unknown parameter", "GET", "/v1/flows?src=1", "", 400, []string{"error"}},
		{"unknown path", "GET", "/v2/nothing", "", 404, []string{"error"}},
		{"root", "GET", "/", "", 404, []string{"error"}},
		{"wrong method on status", "POST", "/v1/status", "", 405, []string{"error"}},
		{"wrong method on reload", "GET", "/v1/config/reload", "", 405, []string{"error"}},
		{"delete a mapping", "DELETE", "/v1/mappings/10.0.1.4", "", 405, []string{"error"}},
		{"oversized body", "POST", "/v1/config/reload", big, 413, []string{"error"}},
		{"reload", "POST", "/v1/config/reload", "", 200, []string{"generation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, b := a.do(t, tt.method, tt.path, strings.NewReader(tt.body), nil)
			require.Equal(t, tt.want, st, "body: %s", b)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			for _, k := range tt.wantKeys {
				assert.Contains(t, m, k)
			}
			if st >= 400 {
				assert.NotEmpty(t, m["error"])
			}
		})
	}
}

func TestMappingScenarios(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	str := func(s string) *string { return &s }
	tests := []struct {
		ip   string
		want MappingResponse
	}{
		{"10.0.1.4", MappingResponse{Private: "10.0.1.4", Scenario: "pool", Pool: "web", Public: str("198.19.1.10"), Ports: &PortRange{1024, 1031}}},
		{"10.0.1.5", MappingResponse{Private: "10.0.1.5", Scenario: "pool", Pool: "web", Public: str("198.19.1.10"), Ports: &PortRange{1032, 1039}}},
		{"10.0.3.7", MappingResponse{Private: "10.0.3.7", Scenario: "instance", Public: str("198.19.1.50"), Ports: &PortRange{0, 65535}}},
		{"10.0.9.9", MappingResponse{Private: "10.0.9.9", Scenario: "default", Pool: "default_snat"}},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			var got MappingResponse
			a.getJSON(t, "/v1/mappings/"+tt.ip, http.StatusOK, &got)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestToken checks the bearer token: every /v1/ path needs it, GET
// included (before, GET /v1/flows and /v1/mappings answered anyone),
// and /metrics, /healthz and /readyz stay open.
func TestToken(t *testing.T) {
	a := newAppliance(t, applianceOptions{token: "s3cret"})
	auths := []struct {
		name string
		auth string
		ok   bool
	}{
		{"missing", "", false},
		{"wrong", "Bearer nope", false},
		{"prefix of the token", "Bearer s3c", false},
		{"not bearer", "Basic czNjcmV0", false},
		{"right", "Bearer s3cret", true},
		{"right, lower-case scheme", "bearer s3cret", true},
	}
	paths := []struct {
		method, path string
		want         int // with the right token
	}{
		{http.MethodPost, "/v1/config/reload", http.StatusOK},
		{http.MethodGet, "/v1/status", http.StatusOK},
		{http.MethodGet, "/v1/flows", http.StatusOK},
		{http.MethodGet, "/v1/mappings/10.0.1.4", http.StatusOK},
		{http.MethodGet, "/v1/config/reload", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/nothing", http.StatusNotFound},
	}
	for _, p := range paths {
		for _, tt := range auths {
			t.Run(p.method+" "+p.path+" "+tt.name, func(t *testing.T) {
				hdr := map[string]string{}
				if tt.auth != "" {
					hdr["Authorization"] = tt.auth
				}
				st, b := a.do(t, p.method, p.path, nil, hdr)
				if tt.ok {
					assert.Equal(t, p.want, st, "body: %s", b)
				} else {
					assert.Equal(t, http.StatusUnauthorized, st, "body: %s", b)
					assert.Contains(t, string(b), "bearer token")
				}
			})
		}
	}
	// The probes and the metrics need no token.
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		st, b := a.do(t, http.MethodGet, p, nil, nil)
		assert.NotEqual(t, http.StatusUnauthorized, st, "%s: %s", p, b)
	}
	// Without a token configured, nothing needs one.
	open := newAppliance(t, applianceOptions{})
	st, b := open.do(t, http.MethodGet, "/v1/flows", nil, nil)
	assert.Equal(t, http.StatusOK, st, "body: %s", b)
}

// TestQueryBound checks that at most MaxConcurrentQueries flow and
// mapping requests ask the workers at once and that more get a clear 429,
// not a pile of queries (each with per-worker buffers) waiting in line.
func TestQueryBound(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	for range MaxConcurrentQueries {
		a.srv.queries <- struct{}{} // requests in flight
	}
	for _, p := range []string{"/v1/flows", "/v1/mappings/10.0.1.4"} {
		st, b := a.do(t, http.MethodGet, p, nil, nil)
		assert.Equal(t, http.StatusTooManyRequests, st, "%s: %s", p, b)
		assert.Contains(t, string(b), "too many")
	}
	st, b := a.do(t, http.MethodGet, "/v1/status", nil, nil)
	assert.Equal(t, http.StatusOK, st, "status asks no worker: %s", b)
	<-a.srv.queries
	for range 3 { // a token is given back after each request
		st, b = a.do(t, http.MethodGet, "/v1/flows", nil, nil)
		assert.Equal(t, http.StatusOK, st, "%s", b)
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          string
		wantErr       bool
	}{
		{"plain", "abc", "abc", false},
		{"trailing newline", "abc\n", "abc", false},
		{"empty", " \n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := dir + "/" + strings.ReplaceAll(tt.name, " ", "_")
			require.NoError(t, os.WriteFile(p, []byte(tt.content), 0o600))
			got, err := ReadToken(p)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := ReadToken(dir + "/missing")
	assert.ErrorContains(t, err, "mgmt.token_file")
}

// TestReadyz checks the reasons natgw is not ready.
func TestReadyz(t *testing.T) {
	t.Run("link down", func(t *testing.T) {
		a := newAppliance(t, applianceOptions{})
		a.out.SetLink(false)
		var e ErrorResponse
		a.getJSON(t, "/readyz", http.StatusServiceUnavailable, &e)
		assert.Contains(t, e.Error, "outside port fake-out: link down")
		a.out.SetLink(true)
		a.getJSON(t, "/readyz", http.StatusOK, &map[string]string{})
	})
	t.Run("workers not polling", func(t *testing.T) {
		a := newAppliance(t, applianceOptions{noStart: true})
		var e ErrorResponse
		a.getJSON(t, "/readyz", http.StatusServiceUnavailable, &e)
		assert.Contains(t, e.Error, "worker 0 has not polled yet")
		// Queries to a stopped worker fail cleanly.
		a.srv.o.QueryTimeout = 20 * time.Millisecond
		a.getJSON(t, "/v1/mappings/10.0.1.4", http.StatusServiceUnavailable, &e)
		assert.Contains(t, e.Error, "did not answer")
	})
	t.Run("worker stalled", func(t *testing.T) {
		a := newAppliance(t, applianceOptions{})
		eventually(t, func() bool { return a.rt.Workers[0].Counters.LastPoll.Load() != 0 }, "worker never polled")
		a.rt.Stop()
		a.clock.advance(2 * time.Second)
		var e ErrorResponse
		a.getJSON(t, "/readyz", http.StatusServiceUnavailable, &e)
		assert.Contains(t, e.Error, "worker 0 last polled")
	})
}

func TestStatus(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	a.sendUDP("10.0.1.4", "198.18.0.10", 4000, 53)
	eventually(t, func() bool { return a.rt.Workers[0].Counters.FlowsActive[1].Load() == 1 }, "flow not created")
	var st StatusResponse
	a.getJSON(t, "/v1/status", http.StatusOK, &st)
	assert.Equal(t, "test", st.Version)
	assert.Equal(t, "fake", st.Driver)
	assert.Equal(t, uint32(1), st.ConfigGeneration)
	assert.Equal(t, a.path, st.ConfigSource)
	require.Len(t, st.Ports, 2)
	assert.Equal(t, PortStatus{Role: "inside", Name: "fake-in", Link: true, RSS: "software: the driver has no hardware RSS"}, st.Ports[0])
	assert.Equal(t, "outside", st.Ports[1].Role)
	require.Len(t, st.Workers, 1)
	assert.Equal(t, uint64(1), st.Workers[0].Flows)
	assert.Equal(t, uint64(1), st.Workers[0].Packets)
	assert.GreaterOrEqual(t, st.Workers[0].BusyRatio, 0.0)
	assert.LessOrEqual(t, st.Workers[0].BusyRatio, 1.0)
}

func TestFlows(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	a.sendUDP("10.0.1.4", "198.18.0.10", 4000, 53)
	a.sendUDP("10.0.1.4", "198.18.0.11", 4001, 53)
	a.sendUDP("10.0.3.7", "198.18.0.10", 5555, 123)
	eventually(t, func() bool { return a.rt.Workers[0].Counters.FlowsCreated[1].Load() == 3 }, "flows not created")
	a.clock.advance(1500 * time.Millisecond)
	tests := []struct {
		query string
		want  int
	}{
		{"", 3},
		{"?private=10.0.1.4", 2},
		{"?private=10.0.3.7", 1},
		{"?private=10.0.1.5", 0},
		{"?limit=1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var got FlowsResponse
			a.getJSON(t, "/v1/flows"+tt.query, http.StatusOK, &got)
			assert.Len(t, got.Flows, tt.want)
		})
	}
	var got FlowsResponse
	a.getJSON(t, "/v1/flows?private=10.0.3.7", http.StatusOK, &got)
	require.Len(t, got.Flows, 1)
	assert.Equal(t, FlowEntry{Protocol: "udp", Private: "10.0.3.7:5555", Public: "198.19.1.50:5555",
		Remote: "198.18.0.10:123", State: "udp", IdleSeconds: 1.5, Worker: 0}, got.Flows[0])
}
