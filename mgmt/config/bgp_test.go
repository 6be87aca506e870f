package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bgpSection is a valid [bgp] section appended to the example.
const bgpSection = `
[bgp]
local_as = 65010
source_address = "10.254.0.11"
hold_time = "3s"
drain_on_sigterm = true

[[bgp.inside_peer]]
address = "10.254.0.1"
as = 65001

[[bgp.outside_peer]]
name = "edge"
address = "10.254.0.2"
as = 65002
`

// parseWithBGP parses the example with section appended.
func parseWithBGP(t *testing.T, section string) (*Config, error) {
	t.Helper()
	b, err := os.ReadFile("testdata/example.toml")
	require.NoError(t, err)
	return Parse(append(b, section...), "bgp.toml")
}

// TestBGPParseDefaults checks that a [bgp] section parses and gets its
// defaults: keepalive a third of the hold time, the default route inside,
// peer names by side and index.
func TestBGPParseDefaults(t *testing.T) {
	c, err := parseWithBGP(t, bgpSection)
	require.NoError(t, err)
	b := c.BGP
	require.NotNil(t, b)
	assert.Equal(t, uint32(65010), b.LocalAS)
	assert.Equal(t, 3*time.Second, b.HoldTime.Duration)
	assert.Equal(t, time.Second, b.KeepaliveInterval.Duration)
	assert.Equal(t, DefaultBGPHoldDown, b.HoldDown.Duration)
	assert.Equal(t, DefaultBGPDrainDeadline, b.DrainDeadline.Duration)
	assert.Equal(t, []string{"0.0.0.0/0"}, b.InsidePrefixes)
	assert.Equal(t, "inside0", b.InsidePeers[0].Name)
	assert.Equal(t, "edge", b.OutsidePeers[0].Name)
	assert.Equal(t, "10.254.0.11", b.ID().String())
	assert.True(t, b.DrainOnSIGTERM)

	c, err = parseWithBGP(t, "")
	require.NoError(t, err)
	assert.Nil(t, c.BGP, "no [bgp] section: no BGP")
}

// TestBGPParseUnknownKey checks that [bgp] is parsed strictly.
func TestBGPParseUnknownKey(t *testing.T) {
	_, err := parseWithBGP(t, strings.Replace(bgpSection, "as = 65001", "as = 65001\nasn = 1", 1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bgp.inside_peer.asn")
	_, err = parseWithBGP(t, strings.Replace(bgpSection, `hold_time = "3s"`, `hold_time = 3`, 1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hold_time")
}

// TestBGPValidate mutates a valid [bgp] section one way per case and
// checks the keys named.
func TestBGPValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(b *BGP)
		keys   []string
		msg    string
	}{
		{"valid", func(b *BGP) {}, nil, ""},
		{"no local as", func(b *BGP) { b.LocalAS = 0 }, []string{"bgp.local_as"}, "missing"},
		{"no source", func(b *BGP) { b.SourceAddress = "" }, []string{"bgp.source_address"}, "missing"},
		{"source is a dataplane address", func(b *BGP) { b.SourceAddress = "198.19.0.2" }, []string{"bgp.source_address"}, "management network"},
		{"bad router id", func(b *BGP) { b.RouterID = "router" }, []string{"bgp.router_id"}, ""},
		{"hold time too short", func(b *BGP) { b.HoldTime.Duration = time.Second }, []string{"bgp.hold_time"}, "whole seconds"},
		{"hold time fraction", func(b *BGP) { b.HoldTime.Duration = 3500 * time.Millisecond }, []string{"bgp.hold_time"}, "whole seconds"},
		{"keepalive too long", func(b *BGP) { b.KeepaliveInterval.Duration = 2 * time.Second }, []string{"bgp.keepalive_interval"}, "third"},
		{"hold down negative", func(b *BGP) { b.HoldDown.Duration = -time.Second }, []string{"bgp.hold_down"}, "0s to"},
		{"drain deadline too long", func(b *BGP) { b.DrainDeadline.Duration = 2 * time.Hour }, []string{"bgp.drain_deadline"}, "0s to"},
		{"bad prefix", func(b *BGP) { b.InsidePrefixes = []string{"0.0.0.0/0", "10.0.0.1/8"} }, []string{"bgp.inside_prefixes[1]"}, ""},
		{"no peers", func(b *BGP) { b.InsidePeers, b.OutsidePeers = nil, nil }, []string{"bgp"}, "no peers"},
		{"peer without as", func(b *BGP) { b.InsidePeers[0].AS = 0 }, []string{"bgp.inside_peer[0].as"}, "missing"},
		{"peer twice", func(b *BGP) { b.OutsidePeers[0].Address = "10.254.0.1" }, []string{"bgp.outside_peer[0].address"}, "once"},
		{"peer is us", func(b *BGP) { b.InsidePeers[0].Address = "10.254.0.11" }, []string{"bgp.inside_peer[0].address"}, "another host"},
		{"peer multicast", func(b *BGP) { b.InsidePeers[0].Address = "224.0.0.5" }, []string{"bgp.inside_peer[0].address"}, "multicast"},
		{"peer names collide", func(b *BGP) { b.OutsidePeers[0].Name = "inside0" }, []string{"bgp.outside_peer[0].name"}, "own name"},
		{"cluster peers", func(b *BGP) { b.ClusterPeers = []string{"10.0.0.2", "10.0.0.3"} }, nil, ""},
		{"cluster peer off the inside link", func(b *BGP) { b.ClusterPeers = []string{"198.19.0.5"} }, []string{"bgp.cluster_peers[0]"}, "inside subnet"},
		{"cluster peer is us", func(b *BGP) { b.ClusterPeers = []string{"10.0.0.1"} }, []string{"bgp.cluster_peers[0]"}, "own address"},
		{"cluster peer twice", func(b *BGP) { b.ClusterPeers = []string{"10.0.0.2", "10.0.0.2"} }, []string{"bgp.cluster_peers[1]"}, "once"},
		{"cluster peer not an address", func(b *BGP) { b.ClusterPeers = []string{"node-b"} }, []string{"bgp.cluster_peers[0]"}, ""},
		{"too many cluster peers", func(b *BGP) {
			for i := range MaxClusterPeers + 1 {
				b.ClusterPeers = append(b.ClusterPeers, fmt.Sprintf("10.0.0.%d", 10+i))
			}
		}, []string{"bgp.cluster_peers"}, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseWithBGP(t, bgpSection)
			require.NoError(t, err)
			tt.mutate(c.BGP)
			err = c.Validate()
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
