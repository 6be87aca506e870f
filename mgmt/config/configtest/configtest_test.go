package configtest

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt/config"
)

// TestTextRoundTrip: what Text writes parses back to the same
// configuration, so a test's struct is what natgw runs.
func TestTextRoundTrip(t *testing.T) {
	assert.Equal(t, withDefaults(Example()), Parse(t, Example()), "%s", Text(Example()))

	c := Example()
	c.Dataplane.Workers = 2
	c.Inside.Routed = []config.RoutedPrefix{{Prefix: "10.7.0.0/16", Via: "10.0.0.254"}}
	c.Pools[0].PortsPerMember = 8
	c.Timeouts.UDP = Duration("2s")
	c.DefaultSNAT, c.Deny = nil, nil
	got := Parse(t, c)
	assert.Equal(t, withDefaults(c), got)
	assert.Nil(t, got.DefaultSNAT, "a nil section is left out")
}

// withDefaults is c as Parse returns it: Example leaves [nat_log] out,
// [reload] out and default_snat.reclaim_idle out, and parsing fills in
// their defaults.
func withDefaults(c *config.Config) *config.Config {
	if c.NatLog.Events == nil {
		c.NatLog.Events = slices.Clone(config.DefaultNatLogEvents)
	}
	if !c.NatLog.Retention.Set {
		c.NatLog.Retention.Duration = config.DefaultHistoryRetention
	}
	if c.NatLog.HistoryMaxSize == 0 {
		c.NatLog.HistoryMaxSize = config.DefaultHistoryMaxSize
	}
	if c.Reload.Reclaim == "" {
		c.Reload.Reclaim = config.ReclaimImmediate
	}
	if !c.Reload.ReclaimDeadline.Set {
		c.Reload.ReclaimDeadline.Duration = config.DefaultReclaimDeadline
	}
	if d := c.DefaultSNAT; d != nil && !d.ReclaimIdle.Set {
		d.ReclaimIdle.Duration = config.DefaultSNATReclaimIdle
	}
	return c
}

// TestExampleIsSpecExample: Example is the SPEC §5 example (testdata's
// copy of it) but for the differences its comment lists.
func TestExampleIsSpecExample(t *testing.T) {
	spec, err := config.Load("../testdata/example.toml")
	require.NoError(t, err)
	spec.Dataplane = config.Dataplane{Driver: "afpacket", Workers: 1, FlowCapacity: 100000}
	spec.Inside.Port, spec.Outside.Port = "veth-in", "veth-out"
	spec.Neighbors = nil
	require.Equal(t, "fe-default", spec.Frontends[1].Name)
	spec.Frontends[1].Address = DefaultPublic
	spec.Instances[0].Inbound = append(spec.Instances[0].Inbound, "icmp")
	assert.Equal(t, spec, Parse(t, Example()))
}

// TestExampleIsFresh: changing one test's copy leaves the next one alone.
func TestExampleIsFresh(t *testing.T) {
	a := Example()
	a.Pools[0].Members[0] = "10.0.9.9"
	a.DefaultSNAT.Sources[0] = "10.1.0.0/16"
	b := Example()
	assert.Equal(t, PoolMembers(), b.Pools[0].Members)
	assert.Equal(t, []string{"10.0.0.0/8"}, b.DefaultSNAT.Sources)
}

// TestParseRefusesInvalid: a variation natgw would refuse fails the test
// that wrote it.
func TestParseRefusesInvalid(t *testing.T) {
	c := Example()
	c.Limits.HostFlowPercent = 0
	_, err := config.Parse(Text(c), "x.toml")
	assert.ErrorContains(t, err, "limits.host_flow_percent", "a zero is written, not left out")
}

// TestTextNatLog: a [nat_log] set on the example survives Text and Parse,
// and an example without one parses to the defaults.
func TestTextNatLog(t *testing.T) {
	c := Example()
	c.NatLog.IPFIX = []string{"127.0.0.1:4739"}
	c.NatLog.Syslog = "tcp://127.0.0.1:5514"
	c.NatLog.Events = []string{"blocks", "sessions"}
	c.NatLog.History = "/var/lib/natgw/history.db"
	got := Parse(t, c)
	if !got.NatLog.Exports("sessions") || got.NatLog.History != c.NatLog.History {
		t.Fatalf("nat_log did not survive: %+v", got.NatLog)
	}
	if plain := Parse(t, Example()); plain.NatLog.Exports("blocks") {
		t.Fatalf("no collector, nothing exported: %+v", plain.NatLog)
	}
}
