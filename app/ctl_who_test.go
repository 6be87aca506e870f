package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
)

// TestCtlWho checks "natgw ctl who": the query it sends to
// /v1/attribution and how it prints the answer.
func TestCtlWho(t *testing.T) {
	var queries []url.Values
	start := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	end := start.Add(2 * time.Hour)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/attribution", r.URL.Path)
		q := r.URL.Query()
		queries = append(queries, q)
		w.Header().Set("Content-Type", "application/json")
		if q.Get("at") == "yesterday" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(mgmt.ErrorResponse{Error: `at: "yesterday" is not an RFC 3339 time`})
			return
		}
		at, _ := time.Parse(time.RFC3339, q.Get("at"))
		resp := mgmt.AttributionResponse{Public: q.Get("public"), Port: 2417, At: at, Holders: []mgmt.HolderInfo{}}
		if q.Get("port") == "2417" {
			resp.Holders = append(resp.Holders,
				mgmt.HolderInfo{Private: "10.0.1.4", Ports: mgmt.PortRange{First: 2048, Last: 3071}, Scope: "pool", Name: "web",
					Generation: 2, Start: start, End: &end, EndReason: "released"},
				mgmt.HolderInfo{Private: "10.5.0.9", Ports: mgmt.PortRange{First: 2048, Last: 3071}, Scope: "default_snat",
					Generation: 1, Start: start.Add(time.Hour), EndReason: "open"})
		}
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		args    []string
		want    int
		wantOut []string
		wantErr []string
	}{
		{"holders", []string{"who", "198.19.1.10:2417", "--at", "2026-03-01T03:12:00Z"}, exitOK,
			[]string{"198.19.1.10:2417 at 2026-03-01T03:12:00Z was held by:", "PRIVATE", "10.0.1.4", "2048-3071", "pool", "web",
				"2026-03-01T02:00:00Z", "2026-03-01T04:00:00Z (released)", "10.5.0.9", "default_snat", "now (open)"}, nil},
		{"no one", []string{"who", "198.19.1.10:80", "--at", "2026-03-01T03:12:00Z"}, exitOK,
			[]string{"no private address held 198.19.1.10:2417 at 2026-03-01T03:12:00Z"}, nil},
		{"JSON", []string{"who", "--json", "198.19.1.10:2417", "--at", "2026-03-01T03:12:00Z"}, exitOK,
			[]string{`"private": "10.0.1.4"`, `"end_reason": "open"`}, nil},
		{"not an address and port", []string{"who", "198.19.1.10"}, exitUsage, nil, []string{"not a public IPv4 address and port"}},
		{"IPv6", []string{"who", "[::1]:80"}, exitUsage, nil, []string{"not a public IPv4 address and port"}},
		{"no argument", []string{"who"}, exitUsage, nil, []string{"usage: natgw ctl"}},
		{"a bad time, refused by the API", []string{"who", "198.19.1.10:2417", "--at", "yesterday"}, exitFail, nil, []string{"not an RFC 3339 time (HTTP 400)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(append([]string{"ctl", "--mgmt", srv.URL}, tt.args...), &out, &errOut)
			assert.Equal(t, tt.want, code, "stdout %s\nstderr %s", out.String(), errOut.String())
			for _, s := range tt.wantOut {
				assert.Contains(t, out.String(), s)
			}
			for _, s := range tt.wantErr {
				assert.Contains(t, errOut.String(), s)
			}
		})
	}
	require.NotEmpty(t, queries)
	assert.Equal(t, "198.19.1.10", queries[0].Get("public"))
	assert.Equal(t, "2417", queries[0].Get("port"))
	assert.Equal(t, "2026-03-01T03:12:00Z", queries[0].Get("at"))
	t.Run("at left out", func(t *testing.T) {
		var out, errOut bytes.Buffer
		n := len(queries)
		require.Equal(t, exitOK, run([]string{"ctl", "--mgmt", srv.URL, "who", "198.19.1.10:2417"}, &out, &errOut), errOut.String())
		require.Len(t, queries, n+1)
		_, has := queries[n]["at"]
		assert.False(t, has, "the appliance's now, not ctl's")
	})
}
