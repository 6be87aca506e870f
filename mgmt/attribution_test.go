package mgmt

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/attrib"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
	"github.com/natgw/natgw/natlog"
)

// attributionServer is a management server without a dataplane whose
// history holds: 10.0.1.4 ports 1024-2047 of 198.19.1.10 from t0 to t0+1h,
// then 10.0.1.5 from t0+1h on.
func attributionServer(t *testing.T, token string, withHistory bool) (*httptest.Server, *attrib.Store, time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "natgw.toml")
	require.NoError(t, os.WriteFile(path, []byte(configText("4m", 8)), 0o600))
	c, err := config.Load(path)
	require.NoError(t, err)
	p, err := CompilePolicy(c, nil)
	require.NoError(t, err)
	var ph nat.PolicyHolder
	ph.Store(p)
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	var h *attrib.Store
	if withHistory {
		h, err = attrib.Open(attrib.Options{Path: filepath.Join(t.TempDir(), "history.db")})
		require.NoError(t, err)
		t.Cleanup(func() { h.Close() })
		pub := nat.U32(netip.MustParseAddr("198.19.1.10"))
		for _, e := range []natlog.BlockEvent{
			{Time: t0, Kind: natlog.BlockAssigned, Scope: natlog.ScopePool, Name: "web", Private: nat.U32(netip.MustParseAddr("10.0.1.4")), Public: pub, First: 1024, Last: 2047, Generation: 1},
			{Time: t0.Add(time.Hour), Kind: natlog.BlockReleased, Scope: natlog.ScopePool, Name: "web", Private: nat.U32(netip.MustParseAddr("10.0.1.4")), Public: pub, First: 1024, Last: 2047, Generation: 2},
			{Time: t0.Add(time.Hour), Kind: natlog.BlockAssigned, Scope: natlog.ScopePool, Name: "web", Private: nat.U32(netip.MustParseAddr("10.0.1.5")), Public: pub, First: 1024, Last: 2047, Generation: 2},
		} {
			h.Block(e)
		}
		require.NoError(t, h.Flush(10*time.Second))
	}
	srv, err := NewServer(Options{Policy: &ph, Token: token, History: h, Version: "test", Driver: "fake"})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs, h, t0
}

func getAttribution(t *testing.T, hs *httptest.Server, query, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, hs.URL+"/v1/attribution"+query, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hs.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	return resp.StatusCode, b
}

func TestAttributionEndpoint(t *testing.T) {
	hs, _, t0 := attributionServer(t, "", true)
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }

	t.Run("holder before the reload", func(t *testing.T) {
		st, b := getAttribution(t, hs, "?public=198.19.1.10&port=2000&at="+at(30*time.Minute), "")
		require.Equal(t, http.StatusOK, st, "%s", b)
		var r AttributionResponse
		require.NoError(t, json.Unmarshal(b, &r))
		assert.Equal(t, "198.19.1.10", r.Public)
		assert.Equal(t, uint16(2000), r.Port)
		require.Len(t, r.Holders, 1)
		h := r.Holders[0]
		assert.Equal(t, "10.0.1.4", h.Private)
		assert.Equal(t, PortRange{1024, 2047}, h.Ports)
		assert.Equal(t, "pool", h.Scope)
		assert.Equal(t, "web", h.Name)
		assert.Equal(t, uint64(1), h.Generation)
		assert.True(t, h.Start.Equal(t0))
		require.NotNil(t, h.End)
		assert.True(t, h.End.Equal(t0.Add(time.Hour)))
		assert.Equal(t, "released", h.EndReason)
	})
	t.Run("holder after the reload, at in another zone", func(t *testing.T) {
		when := t0.Add(90 * time.Minute).In(time.FixedZone("X", 3600)).Format(time.RFC3339)
		st, b := getAttribution(t, hs, "?public=198.19.1.10&port=1024&at="+strings.ReplaceAll(when, "+", "%2B"), "")
		require.Equal(t, http.StatusOK, st, "%s", b)
		var r AttributionResponse
		require.NoError(t, json.Unmarshal(b, &r))
		require.Len(t, r.Holders, 1)
		assert.Equal(t, "10.0.1.5", r.Holders[0].Private)
		assert.Nil(t, r.Holders[0].End)
		assert.Equal(t, "open", r.Holders[0].EndReason)
	})
	t.Run("at defaults to now", func(t *testing.T) {
		st, b := getAttribution(t, hs, "?public=198.19.1.10&port=1024", "")
		require.Equal(t, http.StatusOK, st, "%s", b)
		var r AttributionResponse
		require.NoError(t, json.Unmarshal(b, &r))
		require.Len(t, r.Holders, 1)
		assert.Equal(t, "10.0.1.5", r.Holders[0].Private)
		assert.WithinDuration(t, time.Now(), r.At, time.Hour)
	})
	t.Run("no one", func(t *testing.T) {
		st, b := getAttribution(t, hs, "?public=198.19.1.10&port=5000&at="+at(30*time.Minute), "")
		require.Equal(t, http.StatusOK, st, "%s", b)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		assert.Equal(t, []any{}, m["holders"])
	})
	for _, tc := range []struct{ name, query, msg string }{
		{"no public", "?port=1", "public: missing"},
		{"bad public", "?public=198.19.1&port=1", "not an IPv4 address"},
		{"IPv6 public", "?public=::1&port=1", "not an IPv4 address"},
		{"no port", "?public=198.19.1.10", "port: missing"},
		{"port too big", "?public=198.19.1.10&port=65536", "0 to 65535"},
		{"port negative", "?public=198.19.1.10&port=-1", "0 to 65535"},
		{"port words", "?public=198.19.1.10&port=http", "0 to 65535"},
		{"bad at", "?public=198.19.1.10&port=1&at=yesterday", "RFC 3339"},
		{"at without zone", "?public=198.19.1.10&port=1&at=2026-03-01T03:12:00", "RFC 3339"},
		{"at in the future", "?public=198.19.1.10&port=1&at=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "in the future"},
		{"unknown parameter", "?public=198.19.1.10&port=1&time=now", "unknown parameter"},
		{"parameter twice", "?public=198.19.1.10&port=1&port=2", "once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, b := getAttribution(t, hs, tc.query, "")
			require.Equal(t, http.StatusBadRequest, st, "%s", b)
			var e ErrorResponse
			require.NoError(t, json.Unmarshal(b, &e))
			assert.Contains(t, e.Error, tc.msg)
		})
	}
}

func TestAttributionWithoutHistory(t *testing.T) {
	hs, _, _ := attributionServer(t, "", false)
	st, b := getAttribution(t, hs, "?public=198.19.1.10&port=1", "")
	require.Equal(t, http.StatusServiceUnavailable, st)
	assert.Contains(t, string(b), "nat_log.history")
}

func TestAttributionNeedsToken(t *testing.T) {
	hs, _, _ := attributionServer(t, "s3cret", true)
	st, _ := getAttribution(t, hs, "?public=198.19.1.10&port=1024", "")
	assert.Equal(t, http.StatusUnauthorized, st)
	st, _ = getAttribution(t, hs, "?public=198.19.1.10&port=1024", "wrong")
	assert.Equal(t, http.StatusUnauthorized, st)
	st, b := getAttribution(t, hs, "?public=198.19.1.10&port=1024", "s3cret")
	assert.Equal(t, http.StatusOK, st, "%s", b)
}

func TestAttributionConcurrencyLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "natgw.toml")
	require.NoError(t, os.WriteFile(path, []byte(configText("4m", 8)), 0o600))
	c, err := config.Load(path)
	require.NoError(t, err)
	p, err := CompilePolicy(c, nil)
	require.NoError(t, err)
	var ph nat.PolicyHolder
	ph.Store(p)
	h, err := attrib.Open(attrib.Options{Path: filepath.Join(t.TempDir(), "history.db")})
	require.NoError(t, err)
	defer h.Close()
	srv, err := NewServer(Options{Policy: &ph, History: h})
	require.NoError(t, err)
	for range MaxConcurrentQueries {
		srv.queries <- struct{}{}
	}
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/attribution?public=198.19.1.10&port=1", nil))
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	for range MaxConcurrentQueries {
		<-srv.queries
	}
	w = httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/attribution?public=198.19.1.10&port=1", nil))
	assert.Equal(t, http.StatusOK, w.Code)
}

func TestHistoryMetrics(t *testing.T) {
	hs, h, _ := attributionServer(t, "", true)
	resp, err := hs.Client().Get(hs.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(b)
	st := h.Stats()
	require.Equal(t, uint64(3), st.RecordsWritten)
	assert.Contains(t, text, "natgw_natlog_history_records_written_total 3\n")
	assert.Contains(t, text, "natgw_natlog_history_open_intervals 1\n")
	assert.Contains(t, text, "natgw_natlog_history_write_errors_total 0\n")
	assert.Contains(t, text, `natgw_natlog_history_pruned_total{reason="retention"} 0`)
	assert.Contains(t, text, `natgw_natlog_history_pruned_total{reason="size"} 0`)
	assert.Contains(t, text, "natgw_natlog_history_dropped_total 0\n")
	assert.Regexp(t, `natgw_natlog_history_bytes [1-9]`, text)
}
