package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt/config"
)

// TestRestartNeeded: a reload may change the policy but not what the
// running dataplane was built with.
func TestRestartNeeded(t *testing.T) {
	text, err := os.ReadFile(example)
	require.NoError(t, err)
	load := func() *config.Config {
		c, err := config.Parse(text, example)
		require.NoError(t, err)
		return c
	}
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   string // "" = allowed
	}{
		{"nothing", func(*config.Config) {}, ""},
		{"timeouts", func(c *config.Config) { c.Timeouts.UDP.Duration *= 2 }, ""},
		{"workers", func(c *config.Config) { c.Dataplane.Workers++ }, "needs a restart"},
		{"worker cpus set", func(c *config.Config) { c.Dataplane.WorkerCPUs = []int{1, 2} }, "worker_cpus needs a restart"},
		{"worker priority set", func(c *config.Config) { c.Dataplane.WorkerPriority = 10 }, "worker_priority: changing"},
		{"rx descriptors", func(c *config.Config) { n := 4096; c.Dataplane.RxDescriptors = &n }, "rx_descriptors or tx_descriptors needs a restart"},
		{"tx descriptors default spelled out", func(c *config.Config) { n := 1024; c.Dataplane.TxDescriptors = &n }, ""},
		{"eal args", func(c *config.Config) { c.Dataplane.EALArgs = append(c.Dataplane.EALArgs, "-n", "4") }, "needs a restart"},
		{"inside port", func(c *config.Config) { c.Inside.Port = "other" }, "changing a port needs a restart"},
		{"mgmt listen", func(c *config.Config) { c.Mgmt.Listen = "127.0.0.1:1" }, "mgmt: changing"},
		{"history path", func(c *config.Config) { c.NatLog.History = "/var/lib/natgw/other.db" }, "nat_log.history: changing"},
		{"history retention", func(c *config.Config) { c.NatLog.Retention.Duration /= 2 }, ""},
		{"history size bound", func(c *config.Config) { c.NatLog.HistoryMaxSize *= 2 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, c := load(), load()
			tt.change(c)
			err := restartNeeded(old, c)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
