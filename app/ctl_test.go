package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
)

// fakeAPI answers like the management API with fixed bodies and records
// the requests it got.
func fakeAPI(t *testing.T) (*httptest.Server, *[]*http.Request) {
	var reqs []*http.Request
	pub := "198.19.1.10"
	answer := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, mgmt.StatusResponse{Version: "v9", Driver: "afpacket", UptimeSeconds: 61, ConfigGeneration: 3,
			ConfigSource: "/etc/natgw.toml",
			Ports:        []mgmt.PortStatus{{Role: "inside", Name: "veth-in", Link: true, RxPackets: 10}, {Role: "outside", Name: "veth-out"}},
			Workers:      []mgmt.WorkerStatus{{ID: 0, Flows: 7, Packets: 99, BusyRatio: 0.25}}})
	})
	mux.HandleFunc("GET /v1/mappings/{ip}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("ip") {
		case "10.0.1.4":
			answer(w, 200, mgmt.MappingResponse{Private: "10.0.1.4", Scenario: "pool", Pool: "web", Public: &pub,
				Ports: &mgmt.PortRange{First: 1024, Last: 2047}, Flows: 5, PortsInUse: 3})
		case "10.0.9.9":
			answer(w, 200, mgmt.MappingResponse{Private: "10.0.9.9", Scenario: "default", Pool: "default_snat"})
		case "192.168.0.1":
			answer(w, 404, mgmt.ErrorResponse{Error: "192.168.0.1: no outbound scenario applies"})
		default:
			answer(w, 400, mgmt.ErrorResponse{Error: "not an IPv4 address"})
		}
	})
	mux.HandleFunc("GET /v1/flows", func(w http.ResponseWriter, r *http.Request) {
		reqs = append(reqs, r)
		answer(w, 200, mgmt.FlowsResponse{Flows: []mgmt.FlowEntry{{Protocol: "udp", Private: "10.0.1.4:4000",
			Public: "198.19.1.10:1500", Remote: "198.18.0.10:53", State: "udp", IdleSeconds: 1.5}}})
	})
	mux.HandleFunc("POST /v1/config/reload", func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			answer(w, 200, mgmt.ReloadResponse{Generation: 4})
		case "Bearer bad-config":
			answer(w, 400, mgmt.ErrorResponse{Error: "reload failed", Errors: []string{"timeouts.udp: bad", "pool[0].members: empty"}})
		default:
			answer(w, 401, mgmt.ErrorResponse{Error: "missing or wrong bearer token"})
		}
	})
	mux.HandleFunc("POST /v1/frontends/{name}/{verb}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "fe1" {
			answer(w, 404, mgmt.ErrorResponse{Error: "no such frontend \"" + r.PathValue("name") + "\""})
			return
		}
		drain := r.PathValue("verb") == "drain"
		resp := mgmt.DrainFrontendResponse{Generation: 5, Frontend: "fe1", Draining: drain, Stuck: []string{}}
		if drain {
			resp.Stuck = []string{"web/10.0.2.9"}
		}
		answer(w, 200, resp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &reqs
}

func TestCtl(t *testing.T) {
	srv, reqs := fakeAPI(t)
	dir := t.TempDir()
	token := func(name, tok string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(tok+"\n"), 0o600))
		return p
	}
	good, badCfg, wrong := token("good", "good"), token("bad", "bad-config"), token("wrong", "nope")
	// An address nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name       string
		args       []string
		want       int
		wantOut    []string
		wantErr    []string
		wantJSONOf any
	}{
		{"status", []string{"status"}, exitOK,
			[]string{"natgw v9", "driver afpacket", "up 1m1s", "generation 3", "/etc/natgw.toml", "inside", "veth-in", "up", "outside", "down", "25.0%"}, nil, nil},
		{"status as JSON", []string{"--json", "status"}, exitOK, []string{`"config_generation": 3`}, nil, &mgmt.StatusResponse{}},
		{"status, --json after the command", []string{"status", "--json"}, exitOK, []string{`"version": "v9"`}, nil, &mgmt.StatusResponse{}},
		{"mapping", []string{"mapping", "10.0.1.4"}, exitOK,
			[]string{"pool", "web", "198.19.1.10", "1024-2047 (1024 ports)", "ports in use  3"}, nil, nil},
		{"mapping without block", []string{"mapping", "10.0.9.9"}, exitOK, []string{"default", "none (no block assigned)"}, nil, nil},
		{"mapping without scenario", []string{"mapping", "192.168.0.1"}, exitFail, nil, []string{"no outbound scenario applies (HTTP 404)"}, nil},
		{"mapping of a bad address", []string{"mapping", "10.1"}, exitFail, nil, []string{"not an IPv4 address (HTTP 400)"}, nil},
		{"mapping without address", []string{"mapping"}, exitUsage, nil, []string{"usage: natgw ctl"}, nil},
		{"flows", []string{"flows", "--private", "10.0.1.4", "--limit", "5"}, exitOK,
			[]string{"PROTO", "10.0.1.4:4000", "198.19.1.10:1500", "198.18.0.10:53", "1.5s", "(1 flows)"}, nil, nil},
		{"flows with a bad limit", []string{"flows", "--limit", "x"}, exitUsage, nil, []string{"invalid value"}, nil},
		{"reload", []string{"reload", "--token-file", good}, exitOK, []string{"configuration reloaded: generation 4"}, nil, nil},
		{"reload refused", []string{"reload", "--token-file", badCfg}, exitFail, nil,
			[]string{"Bad Request (HTTP 400)", "timeouts.udp: bad", "pool[0].members: empty"}, nil},
		{"reload with a wrong token", []string{"reload", "--token-file", wrong}, exitFail, nil, []string{"HTTP 401"}, nil},
		{"reload with a missing token file", []string{"reload", "--token-file", filepath.Join(dir, "none")}, exitUsage, nil, []string{"--token-file"}, nil},
		{"drain-frontend", []string{"drain-frontend", "fe1"}, exitOK,
			[]string{"frontend fe1 drains (generation 5)", "1 members keep their blocks on it: web/10.0.2.9"}, nil, nil},
		{"drain-frontend --cancel", []string{"drain-frontend", "--cancel", "fe1"}, exitOK, []string{"frontend fe1 no longer drains (generation 5)"}, nil, nil},
		{"drain-frontend of an unknown frontend", []string{"drain-frontend", "fe9"}, exitFail, nil, []string{`no such frontend "fe9" (HTTP 404)`}, nil},
		{"drain-frontend without a name", []string{"drain-frontend"}, exitUsage, nil, []string{"usage: natgw ctl"}, nil},
		{"unknown command", []string{"frobnicate"}, exitUsage, nil, []string{`unknown command "frobnicate"`}, nil},
		{"no command", nil, exitUsage, nil, []string{"usage: natgw ctl"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"ctl", "--mgmt", srv.URL}, tt.args...)
			code := run(args, &out, &errOut)
			assert.Equal(t, tt.want, code, "stdout %s\nstderr %s", out.String(), errOut.String())
			for _, s := range tt.wantOut {
				assert.Contains(t, out.String(), s)
			}
			for _, s := range tt.wantErr {
				assert.Contains(t, errOut.String(), s)
			}
			if tt.wantJSONOf != nil {
				assert.NoError(t, json.Unmarshal(out.Bytes(), tt.wantJSONOf))
			}
		})
	}
	t.Run("flows query", func(t *testing.T) {
		require.NotEmpty(t, *reqs)
		q := (*reqs)[0].URL.Query()
		assert.Equal(t, "10.0.1.4", q.Get("private"))
		assert.Equal(t, "5", q.Get("limit"))
	})
	t.Run("unreachable", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := run([]string{"ctl", "--mgmt", dead, "status"}, &out, &errOut)
		assert.Equal(t, exitFail, code)
		assert.Contains(t, errOut.String(), "cannot reach the appliance at http://"+dead)
	})
	t.Run("bad URL", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := run([]string{"ctl", "--mgmt", "ftp://x", "status"}, &out, &errOut)
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, errOut.String(), "use http or https")
	})
}

// TestCtlToken checks that ctl sends the bearer token of --token-file (or
// $NATGW_TOKEN_FILE) with every request, GET included: the appliance asks
// for it on every /v1/ path when it has one. Before, only reload sent it.
func TestCtlToken(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(mgmt.ErrorResponse{Error: "missing or wrong bearer token"})
			return
		}
		switch r.URL.Path {
		case "/v1/status":
			json.NewEncoder(w).Encode(mgmt.StatusResponse{Version: "v9"})
		case "/v1/flows":
			json.NewEncoder(w).Encode(mgmt.FlowsResponse{})
		case "/v1/config/reload":
			json.NewEncoder(w).Encode(mgmt.ReloadResponse{Generation: 2})
		default:
			json.NewEncoder(w).Encode(mgmt.MappingResponse{Private: "10.0.1.4", Scenario: "pool"})
		}
	}))
	t.Cleanup(srv.Close)
	good := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(good, []byte("good\n"), 0o600))
	commands := [][]string{{"status"}, {"mapping", "10.0.1.4"}, {"flows"}, {"reload"}}
	for _, cmd := range commands {
		for _, how := range []string{"before the command", "after the command", "environment", "none"} {
			t.Run(cmd[0]+" "+how, func(t *testing.T) {
				args := []string{"ctl", "--mgmt", srv.URL}
				switch how {
				case "before the command":
					args = append(append(args, "--token-file", good), cmd...)
				case "after the command":
					args = append(append(args, cmd...), "--token-file", good)
				case "environment":
					t.Setenv("NATGW_TOKEN_FILE", good)
					args = append(args, cmd...)
				default:
					t.Setenv("NATGW_TOKEN_FILE", "")
					args = append(args, cmd...)
				}
				var out, errOut bytes.Buffer
				code := run(args, &out, &errOut)
				if how == "none" {
					assert.Equal(t, exitFail, code)
					assert.Contains(t, errOut.String(), "HTTP 401")
					return
				}
				assert.Equal(t, exitOK, code, "stdout %s\nstderr %s", out.String(), errOut.String())
			})
		}
	}
	assert.Len(t, seen, len(commands)*4)
}
