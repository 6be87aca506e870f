package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// [reload] and frontend.drain (issue 19): defaults, values, bounds.
func TestValidateReload(t *testing.T) {
	c := loadExample(t)
	assert.Equal(t, ReclaimImmediate, c.Reload.Reclaim, "immediate by default")
	assert.Equal(t, DefaultReclaimDeadline, c.Reload.ReclaimDeadline.Duration)
	assert.False(t, c.Reload.Drains())

	tests := []struct {
		name   string
		mutate func(c *Config)
		keys   []string
		msg    string
	}{
		{"drain", func(c *Config) { c.Reload.Reclaim = ReclaimDrain }, nil, ""},
		{"unknown reclaim", func(c *Config) { c.Reload.Reclaim = "later" }, []string{"reload.reclaim"}, `unknown value "later"`},
		{"deadline too short", func(c *Config) { c.Reload.ReclaimDeadline.Duration = 500 * time.Millisecond }, []string{"reload.reclaim_deadline"}, "at least 1s"},
		{"deadline too long", func(c *Config) { c.Reload.ReclaimDeadline.Duration = 25 * time.Hour }, []string{"reload.reclaim_deadline"}, "at most 24h"},
		{"deadline bounds", func(c *Config) { c.Reload.ReclaimDeadline.Duration = time.Second }, nil, ""},
		{"pool frontend drains", func(c *Config) { c.Frontends[0].Drain = true }, nil, ""},
		{"default-SNAT frontend drains", func(c *Config) { c.Frontends[1].Drain = true }, []string{"frontend[1].drain"}, "default_snat.frontends"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadExample(t)
			tt.mutate(c)
			err := c.Validate()
			if tt.keys == nil {
				assert.NoError(t, err)
				return
			}
			errs := requireErrors(t, err)
			assert.Equal(t, tt.keys, errs.Keys(), "errors:\n%v", err)
			assert.Contains(t, errs[0].Msg, tt.msg)
		})
	}
}

// The keys parse from a file, and a bad value names its key.
func TestParseReload(t *testing.T) {
	base := `
[inside]
port = "in"
address = "10.0.0.1/16"
[outside]
port = "out"
address = "198.19.0.2/24"
gateway = "198.19.0.1"
[[frontend]]
name = "fe1"
address = "198.19.1.10"
drain = true
[[pool]]
name = "web"
frontends = ["fe1"]
members = ["10.0.1.4"]
`
	c, err := Parse([]byte(base+"[reload]\nreclaim = \"drain\"\nreclaim_deadline = \"30s\"\n"), "t.toml")
	require.NoError(t, err)
	assert.True(t, c.Reload.Drains())
	assert.Equal(t, 30*time.Second, c.Reload.ReclaimDeadline.Duration)
	assert.True(t, c.Frontends[0].Drain)
	_, err = Parse([]byte(base+"[reload]\nreclaim = \"soon\"\n"), "t.toml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "reload.reclaim")
}
