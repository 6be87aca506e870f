package nat

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 18 (reload plan): Policy.Keeps predicts exactly what the sweep
// after a reload reclaims, on the [S7] scenarios.

// morePoolMembers grows the test pool to 58 members: past 50, into the
// 512-port tier.
func morePoolMembers(s *PolicySpec) {
	s.Pools[0].Members = append(s.Pools[0].Members, hostsOf("10.0.3.0", 40)...)
}

// memberAToPoolAPI moves memberA from pool web to a new pool on its own
// frontend.
func memberAToPoolAPI(s *PolicySpec) {
	fe := ip4("198.19.1.30")
	s.Frontends = append(s.Frontends, fe)
	s.Pools[0].Members = s.Pools[0].Members[1:]
	s.Pools = append(s.Pools, PoolSpec{Name: "api", Frontends: []uint32{fe}, Members: []uint32{memberA}})
}

func TestKeepsPredictsSweep(t *testing.T) {
	for _, tc := range []struct {
		name string
		// from and to change the test spec (blocks by tier, ppm 0) into
		// the running and the new configuration.
		from, to []func(*PolicySpec)
		// reclaimed is how many of the 750 flows (450 of memberA, 300
		// of memberB) the reload reclaims.
		reclaimed int
	}{
		// 1024-port blocks become 512: each member keeps the first half
		// of its block, so its flows on the other half go.
		{name: "grow into the next tier", to: []func(*PolicySpec){morePoolMembers}, reclaimed: -1},
		{name: "shrink into the previous tier", from: []func(*PolicySpec){morePoolMembers}, reclaimed: 0},
		{name: "move a member to another pool", to: []func(*PolicySpec){memberAToPoolAPI}, reclaimed: 450},
		{name: "change only timeouts", to: []func(*PolicySpec){func(s *PolicySpec) { s.Timeouts.UDP = TickFromDuration(time.Minute) }}, reclaimed: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p1 := compileSpec(t, specWith(0, 4*time.Minute, tc.from...), nil)
			tr := newTestTranslator(t, p1, 8192)
			for i := range 450 {
				require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, uint16(10000+i), 53).build(t), 1000))
			}
			for i := range 300 {
				require.Equal(t, VerdictForward, tr.Outbound(udp(memberB, server, uint16(10000+i), 53).build(t), 1000))
			}
			p2 := compileSpec(t, specWith(0, 4*time.Minute, append(tc.from, tc.to...)...), p1)
			predicted, onUpperHalf := 0, 0
			ft := tr.Flows()
			for i := uint32(1); i <= uint32(ft.Capacity()); i++ {
				f := ft.Flow(i)
				if f.State == StateFree {
					continue
				}
				before := *f
				if !p2.Keeps(f) {
					predicted++
				}
				require.Equal(t, before, *f, "Keeps changes nothing")
				m, _ := p1.Classify(f.Priv)
				if int(f.PubPort) >= int(m.Block.First)+m.Block.Size()/2 {
					onUpperHalf++
				}
			}
			want := tc.reclaimed
			if want < 0 {
				want = onUpperHalf
				require.Positive(t, want, "some flows hold ports of the upper half of their block")
			}
			assert.Equal(t, want, predicted, "prediction")
			tr.SetPolicy(p2)
			for !tr.Sweep(1000) {
			}
			assert.Equal(t, uint64(predicted), tr.Stats.FlowsExpired[ExpireReclaimed], "the sweep reclaims what Keeps predicted")
			assert.Equal(t, 750-predicted, tr.Flows().Len())
		})
	}
}

// A flow Keeps keeps under a new policy stays: the lazy re-validation of
// a packet path lookup agrees with the sweep.
func TestKeepsDenyRule(t *testing.T) {
	p1 := compileSpec(t, specWith(0, 4*time.Minute), nil)
	tr := newTestTranslator(t, p1, 1024)
	require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 10000, 53).build(t), 1000))
	require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, ip4("198.18.0.11"), 10000, 53).build(t), 1000))
	p2 := compileSpec(t, specWith(0, 4*time.Minute, denyServer), p1)
	kept := 0
	ft := tr.Flows()
	for i := uint32(1); i <= uint32(ft.Capacity()); i++ {
		if f := ft.Flow(i); f.State != StateFree && p2.Keeps(f) {
			kept++
			assert.NotEqual(t, server, f.Remote)
		}
	}
	assert.Equal(t, 1, kept)
	tr.SetPolicy(p2)
	require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, ip4("198.18.0.11"), 10000, 53).build(t), 1001), "the kept flow passes")
	for !tr.Sweep(1000) {
	}
	assert.Equal(t, uint64(1), tr.Stats.FlowsExpired[ExpireReclaimed])
	assert.Equal(t, 1, tr.Flows().Len())
}
