package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// poolText is minimal with a frontend and a pool whose on_exhaustion line
// is extra.
func poolText(extra string) string {
	return minimal + `
[[frontend]]
name = "fe1"
address = "198.19.1.10"

[[pool]]
name = "web"
frontends = ["fe1"]
members = ["10.0.1.4"]
` + extra
}

func TestOnExhaustion(t *testing.T) {
	for _, v := range []string{"", `on_exhaustion = "drop"`, `on_exhaustion = "reject"`} {
		c, err := Parse([]byte(poolText(v)), "f.toml")
		require.NoError(t, err, v)
		require.Len(t, c.Pools, 1)
	}
	c, err := Parse([]byte(poolText(`on_exhaustion = "reject"`)), "f.toml")
	require.NoError(t, err)
	assert.Equal(t, OnExhaustionReject, c.Pools[0].OnExhaustion)

	_, err = Parse([]byte(poolText(`on_exhaustion = "refuse"`)), "f.toml")
	errs := requireErrors(t, err)
	assert.Equal(t, []string{"pool[0].on_exhaustion"}, errs.Keys())
	assert.Contains(t, errs[0].Msg, `"refuse": use "drop" or "reject"`)
}
