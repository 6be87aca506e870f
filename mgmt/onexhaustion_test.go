package mgmt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt/config"
)

// TestPolicySpecOnExhaustion: a pool's on_exhaustion reaches the policy
// description and the compiled policy; drop and the default don't reject.
func TestPolicySpecOnExhaustion(t *testing.T) {
	for _, tt := range []struct {
		line string
		want bool
	}{{"", false}, {`on_exhaustion = "drop"`, false}, {`on_exhaustion = "reject"`, true}} {
		text := strings.Replace(configText("4m", 8), "ports_per_member = 8", "ports_per_member = 8\n"+tt.line, 1)
		path := filepath.Join(t.TempDir(), "natgw.toml")
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
		c, err := config.Load(path)
		require.NoError(t, err, tt.line)
		s, err := PolicySpec(c)
		require.NoError(t, err)
		assert.Equal(t, tt.want, s.Pools[0].RejectOnExhaustion, tt.line)
		p, err := CompilePolicy(c, nil)
		require.NoError(t, err)
		assert.Equal(t, tt.want, p.RejectsOnExhaustion(0), tt.line)
	}
}

// TestRejectMetrics: a pool with on_exhaustion reject answers the flow
// its member can't have, and the worker counts it.
func TestRejectMetrics(t *testing.T) {
	a := newAppliance(t, applianceOptions{ppm: 8})
	sent := 0
	for i := range 8 {
		a.sendUDP("10.0.1.4", "198.18.0.10", uint16(4000+i), 53)
	}
	eventually(t, func() bool { return a.sentUDP(&sent) == 8 }, "8 flows should pass, %d did", sent)
	text := strings.Replace(configText("4m", 8), "ports_per_member = 8", "ports_per_member = 8\non_exhaustion = \"reject\"", 1)
	require.NoError(t, os.WriteFile(a.path, []byte(text), 0o600))
	st, b := a.do(t, "POST", "/v1/config/reload", nil, nil)
	require.Equal(t, 200, st, "%s", b)
	// The worker picks the new policy up at its next poll: send until a
	// refusal is answered.
	k := 0
	eventually(t, func() bool {
		a.sendUDP("10.0.1.4", "198.18.0.10", uint16(5000+k), 53)
		k++
		v, _ := metricValue(a.metrics(t), "natgw_snat_exhaustion_rejects_total", map[string]string{"result": "sent"})
		return v >= 1
	}, "reject not counted")
	assert.Equal(t, 8, a.sentUDP(&sent), "refused flows don't leave")
	v, ok := metricValue(a.metrics(t), "natgw_snat_exhaustion_rejects_total", map[string]string{"result": "rate_limited"})
	assert.True(t, ok)
	assert.Zero(t, v)
}
