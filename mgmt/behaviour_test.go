package mgmt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// TestPolicySpecMappingBehaviour: a pool's mapping and filtering keys
// reach the policy description and the compiled policy (issue 19).
func TestPolicySpecMappingBehaviour(t *testing.T) {
	for _, tt := range []struct {
		lines string
		m     nat.MappingMode
		f     nat.FilteringMode
	}{
		{"", nat.MappingAddressPortDependent, nat.FilteringAddressPortDependent},
		{`mapping = "endpoint-independent"`, nat.MappingEndpointIndependent, nat.FilteringAddressPortDependent},
		{"mapping = \"endpoint-independent\"\nfiltering = \"address-dependent\"", nat.MappingEndpointIndependent, nat.FilteringAddressDependent},
		{"mapping = \"endpoint-independent\"\nfiltering = \"endpoint-independent\"", nat.MappingEndpointIndependent, nat.FilteringEndpointIndependent},
	} {
		text := strings.Replace(configText("4m", 8), "ports_per_member = 8", "ports_per_member = 8\n"+tt.lines, 1)
		path := filepath.Join(t.TempDir(), "natgw.toml")
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
		c, err := config.Load(path)
		require.NoError(t, err, tt.lines)
		s, err := PolicySpec(c)
		require.NoError(t, err)
		assert.Equal(t, tt.m, s.Pools[0].Mapping, tt.lines)
		assert.Equal(t, tt.f, s.Pools[0].Filtering, tt.lines)
		p, err := CompilePolicy(c, nil)
		require.NoError(t, err)
		m, f := p.Behaviour(0)
		assert.Equal(t, [2]any{tt.m, tt.f}, [2]any{m, f}, tt.lines)
		assert.Equal(t, tt.m == nat.MappingEndpointIndependent, p.HasEIM())
	}
}
