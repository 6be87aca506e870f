package mgmt

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// exampleConfig is the SPEC §5 example that the config package tests.
const exampleConfig = "config/testdata/example.toml"

func u32(s string) uint32 { return nat.U32(netip.MustParseAddr(s)) }

// TestPolicySpecExample: the SPEC §5 example converts to the description
// it says, with the defaults of what it leaves out.
func TestPolicySpecExample(t *testing.T) {
	c, err := config.Load(exampleConfig)
	require.NoError(t, err)
	s, err := PolicySpec(c)
	require.NoError(t, err)
	members := []uint32{u32("10.0.1.4"), u32("10.0.1.5")}
	for i := range 16 {
		members = append(members, u32("10.0.2.0")+uint32(i))
	}
	fe1, feDefault := u32("198.19.1.10"), u32("198.19.1.11")
	assert.Equal(t, nat.PolicySpec{
		Inside:      nat.Prefix{Addr: u32("10.0.0.1"), Bits: 16},
		Outside:     nat.Prefix{Addr: u32("198.19.0.2"), Bits: 24},
		Gateway:     u32("198.19.0.1"),
		SourceCheck: true,
		Timeouts: nat.Timeouts{
			TCPEstablished: nat.TickFromDuration(4 * time.Minute),
			TCPTransitory:  nat.TickFromDuration(30 * time.Second),
			TCPClosing:     nat.TickFromDuration(10 * time.Second),
			UDP:            nat.TickFromDuration(4 * time.Minute),
			ICMP:           nat.TickFromDuration(60 * time.Second),
		},
		HostFlowPercent:    config.DefaultHostFlowPercent,
		InboundFlowPercent: config.DefaultInboundFlowPercent,
		Frontends:          []uint32{fe1, feDefault},
		Pools:              []nat.PoolSpec{{Name: "web", Frontends: []uint32{fe1}, Members: members}},
		Instances: []nat.InstanceSpec{{Private: u32("10.0.3.7"), Public: u32("198.19.1.50"), Inbound: []nat.PortRule{
			{Proto: nat.ProtoTCP, Lo: 22, Hi: 22}, {Proto: nat.ProtoTCP, Lo: 8000, Hi: 8100}, {Proto: nat.ProtoUDP, Lo: 0, Hi: 0xFFFF}}}},
		DefaultSNAT: &nat.DefaultSNATSpec{Sources: []nat.Prefix{{Addr: u32("10.0.0.0"), Bits: 8}},
			Frontends: []uint32{feDefault}, PortsPerMember: 1024, Workers: 2, ReclaimIdle: config.DefaultSNATReclaimIdle},
		Deny: []nat.DenyRule{{Destination: nat.Prefix{Addr: u32("198.18.99.0"), Bits: 24},
			PortRule: nat.PortRule{Proto: nat.ProtoTCP, Lo: 25, Hi: 25}}},
		Drain: nat.DrainSpec{Deadline: nat.TickFromDuration(config.DefaultReclaimDeadline)},
	}, s)

	c.Reload.Reclaim = config.ReclaimDrain
	c.Frontends[0].Drain = true
	c.Instances[0].Drain = true
	s, err = PolicySpec(c)
	require.NoError(t, err)
	assert.Equal(t, nat.DrainSpec{Reclaim: true, Deadline: nat.TickFromDuration(config.DefaultReclaimDeadline),
		Frontends: []uint32{fe1}, Instances: []uint32{u32("198.19.1.50")}}, s.Drain, "[reload], frontend.drain and instance.drain")

	p, err := CompilePolicy(c, nil)
	require.NoError(t, err)
	m, v := p.Classify(u32("10.0.2.15"))
	require.Equal(t, nat.VerdictForward, v)
	assert.Equal(t, nat.ScenarioPool, m.Scenario, "the last address of a member prefix is a member")
	assert.Equal(t, 1024, p.DefaultSNATPortsPerMember())
}

// TestPolicySpecErrors: a configuration that was not validated gives an
// error naming the key, never a panic or a half-converted description.
func TestPolicySpecErrors(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		edit      func(c *config.Config)
	}{
		{"inside address", "inside.address", func(c *config.Config) { c.Inside.Address = "10.0.0.1" }},
		{"IPv6 outside", "outside.address", func(c *config.Config) { c.Outside.Address = "2001:db8::1/64" }},
		{"gateway", "outside.gateway", func(c *config.Config) { c.Outside.Gateway = "gw" }},
		{"routed via", "inside.routed[0].via", func(c *config.Config) {
			c.Inside.Routed = []config.RoutedPrefix{{Prefix: "10.7.0.0/16", Via: "2001:db8::1"}}
		}},
		{"frontend", "frontend[1].address", func(c *config.Config) { c.Frontends[1].Address = "" }},
		{"pool frontend", "pool[0].frontends", func(c *config.Config) { c.Pools[0].Frontends = []string{"fe9"} }},
		{"pool members", "pool[0].members", func(c *config.Config) { c.Pools[0].Members = []string{"10.0.1.4/33"} }},
		{"inbound rule", "instance[0].inbound[1]", func(c *config.Config) { c.Instances[0].Inbound[1] = "sctp/9" }},
		{"default frontend", "default_snat.frontends", func(c *config.Config) { c.DefaultSNAT.Frontends = []string{"fe1", "none"} }},
		{"default source", "default_snat.sources[0]", func(c *config.Config) { c.DefaultSNAT.Sources = []string{"10/8"} }},
		{"deny", "deny[0]", func(c *config.Config) { c.Deny[0].Ports = "25-20" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(exampleConfig)
			require.NoError(t, err)
			tc.edit(c)
			_, err = PolicySpec(c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.key)
			_, err = CompilePolicy(c, nil)
			assert.Error(t, err)
		})
	}
}

// TestReloaderRunningConfig: Check compares a reload with the running
// configuration, first the one the appliance started with, then each one
// a reload published; Apply gets the configuration it publishes.
func TestReloaderRunningConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "natgw.toml")
	write := func(udp string) {
		require.NoError(t, os.WriteFile(path, []byte(configText(udp, 8)), 0o600))
	}
	write("4m")
	start, err := config.Load(path)
	require.NoError(t, err)
	p, err := CompilePolicy(start, nil)
	require.NoError(t, err)
	var holder nat.PolicyHolder
	holder.Store(p)

	var running []*config.Config
	var applied *config.Config
	refuse := false
	r := NewReloader(ReloadOptions{Path: path, Policy: &holder, Config: start,
		Check: func(cur, next *config.Config) error {
			running = append(running, cur)
			if refuse {
				return errors.New("needs a restart")
			}
			return nil
		},
		Apply: func(c *config.Config, p *nat.Policy) {
			applied = c
			assert.Same(t, holder.Load(), p, "Apply comes after the policy is published")
		},
	})

	write("5m")
	gen, err := r.Reload()
	require.NoError(t, err)
	assert.Equal(t, uint32(2), gen)
	require.Len(t, running, 1)
	assert.Same(t, start, running[0], "the first reload is checked against the start-up configuration")
	require.NotNil(t, applied)
	assert.Equal(t, 5*time.Minute, applied.Timeouts.UDP.Duration)
	assert.Equal(t, nat.TickFromDuration(5*time.Minute), holder.Load().Timeouts.UDP)

	first := applied
	refuse = true
	write("6m")
	_, err = r.Reload()
	require.Error(t, err)
	require.Len(t, running, 2)
	assert.Same(t, first, running[1], "the second against the configuration the first published")
	assert.Equal(t, uint32(2), holder.Load().Gen, "a refused reload publishes nothing")

	refuse = false
	_, err = r.Reload()
	require.NoError(t, err)
	require.Len(t, running, 3)
	assert.Same(t, first, running[2], "a refused reload leaves the running configuration")
}

// TestPolicySpecSessionEvents: workers report sessions only when
// [nat_log] lists them and names a collector to send them to.
func TestPolicySpecSessionEvents(t *testing.T) {
	for _, tc := range []struct {
		natLog config.NatLog
		want   bool
	}{
		{config.NatLog{}, false},
		{config.NatLog{Events: []string{"blocks", "sessions"}}, false},
		{config.NatLog{IPFIX: []string{"192.0.2.10:4739"}, Events: []string{"blocks"}}, false},
		{config.NatLog{IPFIX: []string{"192.0.2.10:4739"}, Events: []string{"blocks", "sessions"}}, true},
		{config.NatLog{Syslog: "udp://192.0.2.10:514", Events: []string{"sessions"}}, true},
	} {
		c, err := config.Load(exampleConfig)
		require.NoError(t, err)
		c.NatLog = tc.natLog
		s, err := PolicySpec(c)
		require.NoError(t, err)
		assert.Equal(t, tc.want, s.SessionEvents, "%+v", tc.natLog)
	}
}
