package mgmt

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDrainAndBGPStatus checks POST /v1/drain (409 without [bgp], 202
// and the drain started with it) and the "bgp" part of /v1/status.
func TestDrainAndBGPStatus(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	st, b := a.do(t, http.MethodPost, "/v1/drain", nil, nil)
	assert.Equal(t, http.StatusConflict, st, "body: %s", b)
	var status map[string]any
	st, b = a.do(t, http.MethodGet, "/v1/status", nil, nil)
	require.Equal(t, http.StatusOK, st)
	require.NoError(t, json.Unmarshal(b, &status))
	assert.NotContains(t, status, "bgp", "no [bgp]: no bgp status")

	drains := 0
	a.srv.o.Drain = func() error { drains++; return nil }
	a.srv.o.BGPStatus = func() any { return map[string]any{"ready": true} }
	st, b = a.do(t, http.MethodPost, "/v1/drain", nil, nil)
	assert.Equal(t, http.StatusAccepted, st, "body: %s", b)
	assert.Equal(t, 1, drains)
	st, _ = a.do(t, http.MethodGet, "/v1/drain", nil, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, st)
	st, b = a.do(t, http.MethodGet, "/v1/status", nil, nil)
	require.Equal(t, http.StatusOK, st)
	require.NoError(t, json.Unmarshal(b, &status))
	assert.Equal(t, map[string]any{"ready": true}, status["bgp"])
	assert.Empty(t, a.srv.NotReady())
}
