package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 19: mapping and filtering of pools and default SNAT.
func TestMappingBehaviour(t *testing.T) {
	for _, extra := range []string{
		"",
		`mapping = "address-and-port-dependent"`,
		"mapping = \"address-and-port-dependent\"\nfiltering = \"address-and-port-dependent\"",
		`mapping = "endpoint-independent"`,
		"mapping = \"endpoint-independent\"\nfiltering = \"address-dependent\"",
		"mapping = \"endpoint-independent\"\nfiltering = \"endpoint-independent\"",
	} {
		c, err := Parse([]byte(poolText(extra)), "f.toml")
		require.NoError(t, err, extra)
		require.Len(t, c.Pools, 1)
	}
	c, err := Parse([]byte(poolText("mapping = \"endpoint-independent\"\nfiltering = \"address-dependent\"")), "f.toml")
	require.NoError(t, err)
	assert.True(t, EndpointIndependent(c.Pools[0].Mapping))
	assert.Equal(t, FilteringAddressDependent, c.Pools[0].Filtering)

	for _, tc := range []struct{ extra, key, msg string }{
		{`mapping = "full-cone"`, "pool[0].mapping", `"full-cone": use "address-and-port-dependent" or "endpoint-independent"`},
		{"mapping = \"endpoint-independent\"\nfiltering = \"open\"", "pool[0].filtering", `"open": use "address-and-port-dependent", "address-dependent" or "endpoint-independent"`},
		{`filtering = "endpoint-independent"`, "pool[0].filtering", `needs mapping = "endpoint-independent"`},
	} {
		_, err := Parse([]byte(poolText(tc.extra)), "f.toml")
		errs := requireErrors(t, err)
		assert.Equal(t, []string{tc.key}, errs.Keys(), tc.extra)
		assert.Contains(t, errs[0].Msg, tc.msg)
	}
}

func TestDefaultSNATMappingBehaviour(t *testing.T) {
	text := func(extra string) string {
		return minimal + `
[[frontend]]
name = "def"
address = "198.19.1.20"

[default_snat]
sources = ["10.0.0.0/8"]
frontends = ["def"]
` + extra
	}
	c, err := Parse([]byte(text("mapping = \"endpoint-independent\"\nfiltering = \"endpoint-independent\"")), "f.toml")
	require.NoError(t, err)
	assert.True(t, EndpointIndependent(c.DefaultSNAT.Mapping))
	assert.Equal(t, FilteringEndpointIndependent, c.DefaultSNAT.Filtering)
	_, err = Parse([]byte(text(`filtering = "address-dependent"`)), "f.toml")
	errs := requireErrors(t, err)
	assert.Equal(t, []string{"default_snat.filtering"}, errs.Keys())
}
