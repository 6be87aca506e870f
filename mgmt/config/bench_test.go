package config

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPortRangeNoAllocs checks that the matching methods the packet path
// may call on parsed rules don't allocate.
func TestPortRangeNoAllocs(t *testing.T) {
	r := PortRange{Lo: 1000, Hi: 2000}
	tests := []struct {
		name string
		fn   func()
	}{
		{"Contains", func() { _ = r.Contains(1500) }},
		{"IsAll", func() { _ = r.IsAll() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(100, tt.fn))
		})
	}
}

// BenchmarkParse measures parsing, defaulting and validating the example
// configuration (management core only; this is not packet-path code).
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/example.toml")
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, "example.toml"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateLargePool measures Validate on a configuration with a
// pool of 1000 members, the largest allowed.
func BenchmarkValidateLargePool(b *testing.B) {
	data, err := os.ReadFile("testdata/example.toml")
	require.NoError(b, err)
	c, err := Parse(data, "example.toml")
	require.NoError(b, err)
	c.Pools[0].Members = members(1000)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
