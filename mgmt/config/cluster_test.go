package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoNodes returns two valid node configurations that fit together: the
// example on node A, and node B with its own addresses.
func twoNodes(t *testing.T) (*Config, *Config) {
	t.Helper()
	a, err := parseWithBGP(t, bgpSection)
	require.NoError(t, err)
	b, err := parseWithBGP(t, bgpSection)
	require.NoError(t, err)
	b.Inside.Address = "10.0.0.2/16"
	b.Outside.Address = "198.19.0.3/24"
	for i := range b.Frontends {
		b.Frontends[i].Address = "198.19.2." + string(rune('1'+i)) + "0"
	}
	for i := range b.Instances {
		b.Instances[i].Public = "198.19.3." + string(rune('1'+i)) + "0"
	}
	b.BGP.SourceAddress = "10.254.0.12"
	require.NoError(t, b.Validate())
	return a, b
}

// TestCheckCluster checks that nodes fit together only with their own
// public addresses, inside addresses, BGP sources and router ids.
func TestCheckCluster(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(a, b *Config)
		keys   []string
		msg    string
	}{
		{"fit", func(a, b *Config) {}, nil, ""},
		{"same frontend", func(a, b *Config) { b.Frontends[0].Address = a.Frontends[0].Address }, []string{"frontend[0].address"}, "same public 5-tuple"},
		{"frontend is the other's instance", func(a, b *Config) { b.Frontends[1].Address = a.Instances[0].Public }, []string{"frontend[1].address"}, "instance[0].public of A"},
		{"same outside address", func(a, b *Config) { b.Outside.Address = a.Outside.Address }, []string{"outside.address"}, "also outside.address of A"},
		{"same inside address", func(a, b *Config) { b.Inside.Address = a.Inside.Address }, []string{"inside.address"}, "own inside address"},
		{"same bgp source", func(a, b *Config) { b.BGP.SourceAddress = a.BGP.SourceAddress }, []string{"bgp.source_address", "bgp.router_id"}, "own address"},
		{"one without bgp", func(a, b *Config) { b.BGP = nil }, []string{"bgp"}, "never be in ECMP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := twoNodes(t)
			tt.mutate(a, b)
			err := CheckCluster([]Node{{"A", a}, {"B", b}})
			if tt.keys == nil {
				assert.NoError(t, err)
				return
			}
			errs := requireErrors(t, err)
			assert.Equal(t, tt.keys, errs.Keys(), "errors:\n%v", err)
			assert.Contains(t, errs[0].Msg, tt.msg)
			assert.Equal(t, "B", errs[0].Source)
		})
	}
}
