package nat

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCompileRefusesBadSpec: a description Compile can't lay out is an
// error naming what is wrong, never a panic.
func TestCompileRefusesBadSpec(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(s *PolicySpec)
	}{
		{"inside prefix length", "inside: prefix length 33", func(s *PolicySpec) { s.Inside.Bits = 33 }},
		{"negative prefix length", "outside: prefix length -1", func(s *PolicySpec) { s.Outside.Bits = -1 }},
		{"routed prefix", "routed[0]", func(s *PolicySpec) { s.Routed = []RoutedPrefix{{Prefix: Prefix{Bits: 40}}} }},
		{"default source", "default_snat.sources[0]", func(s *PolicySpec) { s.DefaultSNAT.Sources[0].Bits = 64 }},
		{"deny destination", "deny[0].destination", func(s *PolicySpec) { s.Deny[0].Destination.Bits = 99 }},
		{"block size", "pool[0]", func(s *PolicySpec) { s.Pools[0].PortsPerMember = 7 }},
		{"too many members", "pool[0].members", func(s *PolicySpec) { s.Pools[0].Members = hostsOf("10.1.0.0", 1001) }},
		{"blocks don't fit", "pool[0]", func(s *PolicySpec) {
			s.Pools[0].PortsPerMember = 32768
			s.Pools[0].Members = hostsOf("10.1.0.0", 3)
		}},
		{"no default frontend", "default_snat", func(s *PolicySpec) { s.DefaultSNAT.Frontends = nil }},
		{"no worker", "default_snat", func(s *PolicySpec) { s.DefaultSNAT.Workers = 0 }},
		{"too many pools", "pools", func(s *PolicySpec) { s.Pools = make([]PoolSpec, ScopeDefault) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec(0)
			tc.edit(&s)
			p, err := Compile(s, nil)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestCompileKeepsNoSpecSlice: a policy is immutable, so changing the
// description it was compiled from, as tests and reloads do to build the
// next one, changes nothing in it.
func TestCompileKeepsNoSpecSlice(t *testing.T) {
	s := testSpec(0)
	p := compileSpec(t, s, nil)
	s.Instances[0].Inbound[0] = PortRule{Proto: ProtoUDP, Lo: 1, Hi: 1}
	s.Pools[0].Frontends[0] = ip4("192.0.2.1")
	s.Pools[0].Members[0] = ip4("192.0.2.2")
	s.DefaultSNAT.Frontends[0] = ip4("192.0.2.3")
	s.Frontends[0] = ip4("192.0.2.4")

	in, ok := p.InstanceByPublic(instPub)
	require.True(t, ok)
	assert.True(t, in.AllowsInbound(ProtoTCP, 22), "the instance keeps its compiled rules")
	assert.Equal(t, AddrFrom(fe1), p.Pools[0].Frontends[0])
	assert.Equal(t, AddrFrom(memberA), p.Pools[0].Members[0])
	assert.True(t, p.IsPublic(fe1))

	// The next policy, compiled from the changed description, keeps the
	// default-SNAT assigner only when default SNAT is unchanged.
	next := compileSpec(t, testSpec(0), p)
	assert.Same(t, p.DefaultSNAT(), next.DefaultSNAT())
	assert.Equal(t, p.Gen+1, next.Gen)
	other := compileSpec(t, s, next)
	assert.NotSame(t, next.DefaultSNAT(), other.DefaultSNAT())
	// The idle time before reclamation is the management core's, not the
	// assigner's: changing it keeps the assignments.
	idle := testSpec(0)
	idle.DefaultSNAT.ReclaimIdle = 5 * time.Second
	shorter := compileSpec(t, idle, next)
	assert.Same(t, next.DefaultSNAT(), shorter.DefaultSNAT())
	assert.Equal(t, 5*time.Second, shorter.DefaultSNATReclaimIdle())
}
