package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
)

// hotspotsAPI answers GET /v1/hotspots with two pairs and counts the
// requests.
func hotspotsAPI(t *testing.T) (*httptest.Server, *[]string) {
	var queries []string
	eta := 148.0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/hotspots" {
			w.WriteHeader(404)
			json.NewEncoder(w).Encode(mgmt.ErrorResponse{Error: "no such endpoint"})
			return
		}
		queries = append(queries, r.URL.RawQuery)
		json.NewEncoder(w).Encode(mgmt.HotspotsResponse{WindowSeconds: 30, Hotspots: []mgmt.HotspotEntry{
			{Private: "10.0.1.4", Destination: "198.18.0.10:443", Protocol: "udp", Pool: "web", Scope: "pool",
				PortsInUse: 120, Block: 1008, Utilization: 120.0 / 1008, GrowthPerSecond: 6, ETASeconds: &eta, Samples: 20},
			{Private: "10.0.1.5", Destination: "198.18.0.20:53", Protocol: "udp", Pool: "web", Scope: "pool",
				PortsInUse: 300, Block: 1008, Utilization: 300.0 / 1008, Samples: 20},
		}})
	}))
	t.Cleanup(srv.Close)
	return srv, &queries
}

func TestCtlTop(t *testing.T) {
	srv, queries := hotspotsAPI(t)
	t.Run("once", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := run([]string{"ctl", "--mgmt", srv.URL, "top", "--once", "--limit", "7"}, &out, &errOut)
		require.Equal(t, exitOK, code, errOut.String())
		s := out.String()
		assert.NotContains(t, s, ansiClearHome)
		for _, want := range []string{"PRIVATE", "10.0.1.4", "198.18.0.10:443", "120/1008", "11.9%", "+6.00", "2m28s", "10.0.1.5", "(2 pairs"} {
			assert.Contains(t, s, want)
		}
		assert.Less(t, strings.Index(s, "10.0.1.4"), strings.Index(s, "10.0.1.5"), "API order kept")
		assert.Equal(t, "limit=7", (*queries)[len(*queries)-1])
	})
	t.Run("json", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := run([]string{"ctl", "--mgmt", srv.URL, "top", "--json"}, &out, &errOut)
		require.Equal(t, exitOK, code, errOut.String())
		var resp mgmt.HotspotsResponse
		require.NoError(t, json.Unmarshal(out.Bytes(), &resp))
		require.Len(t, resp.Hotspots, 2)
		assert.Equal(t, 148.0, *resp.Hotspots[0].ETASeconds)
		assert.Nil(t, resp.Hotspots[1].ETASeconds)
	})
	t.Run("refreshes in place", func(t *testing.T) {
		var out, errOut bytes.Buffer
		c := &ctlClient{base: srv.URL, timeout: 5 * time.Second, stdout: &out, stderr: &errOut}
		before := len(*queries)
		code := c.topLoop(context.Background(), "/v1/hotspots?limit=20", time.Millisecond, 3)
		require.Equal(t, exitOK, code)
		assert.Equal(t, 3, strings.Count(out.String(), ansiClearHome), "one cleared screen per refresh")
		assert.Equal(t, 3, strings.Count(out.String(), "198.18.0.10:443"))
		assert.Equal(t, before+3, len(*queries))
	})
	t.Run("errors shown in place", func(t *testing.T) {
		var out, errOut bytes.Buffer
		c := &ctlClient{base: srv.URL, timeout: 5 * time.Second, stdout: &out, stderr: &errOut}
		code := c.topLoop(context.Background(), "/v1/nothing", time.Millisecond, 2)
		require.Equal(t, exitOK, code)
		assert.Equal(t, 2, strings.Count(out.String(), "error: no such endpoint (HTTP 404)"))
	})
	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"top", "--interval", "0s"}, {"top", "--limit", "x"}, {"top", "extra"}} {
			var out, errOut bytes.Buffer
			code := run(append([]string{"ctl", "--mgmt", srv.URL}, args...), &out, &errOut)
			assert.Equal(t, exitUsage, code, "%v", args)
		}
	})
}

func TestFormatETA(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	assert.Equal(t, "-", formatETA(nil))
	assert.Equal(t, "exhausted", formatETA(f(0)))
	assert.Equal(t, "2m28s", formatETA(f(148)))
	assert.Equal(t, ">100d", formatETA(f(1e9)))
}
