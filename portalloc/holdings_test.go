package portalloc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// holdings collects a scan by address.
func holdings(d *DefaultSNAT) map[uint32]Holding {
	out := map[uint32]Holding{}
	d.ScanHoldings(func(h Holding) { out[h.Private] = h })
	return out
}

func TestDefaultSNATHoldings(t *testing.T) {
	const a, b = 0x0A000001, 0x0A000002
	d := newTestDefaultSNAT(t, DefaultSNATConfig{PortsPerMember: 1024})
	assert.Zero(t, d.Changes())
	assert.Empty(t, holdings(d))

	before := time.Now().UnixNano()
	blk, ok := d.Acquire(1, a)
	require.True(t, ok)
	after := time.Now().UnixNano()
	assert.Equal(t, uint64(1), d.Changes(), "an assignment is a change")
	h := holdings(d)
	require.Contains(t, h, uint32(a))
	assert.Equal(t, blk, h[a].Block)
	assert.GreaterOrEqual(t, h[a].Index, 0)
	assert.GreaterOrEqual(t, h[a].Changed, before, "dated by the assignment")
	assert.LessOrEqual(t, h[a].Changed, after)

	// Flows coming and going, and assigning again, change nothing.
	_, ok = d.Acquire(0, a)
	require.True(t, ok)
	d.Release(0, a)
	d.Release(1, a)
	_, ok = d.Assign(a)
	require.True(t, ok)
	assert.Equal(t, uint64(1), d.Changes())

	// Reclamation frees the block: the address stays, without a block,
	// dated by the pass that freed it.
	t0 := time.Unix(1_700_000_000, 0) // before the next assignment
	d.Reclaim(t0, time.Second)
	d.Reclaim(t0.Add(time.Second), time.Second) // drains
	assert.Equal(t, uint64(1), d.Changes(), "draining is still holding")
	assert.Equal(t, blk, holdings(d)[a].Block)
	require.Equal(t, 1, d.Reclaim(t0.Add(2*time.Second), time.Second))
	assert.Equal(t, uint64(2), d.Changes())
	h = holdings(d)
	assert.Equal(t, -1, h[a].Index)
	assert.Equal(t, Block{}, h[a].Block)
	assert.Equal(t, t0.Add(2*time.Second).UnixNano(), h[a].Changed)

	// The freed block goes to another address: a third change.
	other, ok := d.Acquire(0, b)
	require.True(t, ok)
	assert.Equal(t, blk, other)
	assert.Equal(t, uint64(3), d.Changes())
	h = holdings(d)
	assert.Equal(t, blk, h[b].Block)
	assert.Greater(t, h[b].Changed, h[a].Changed, "dated by its own assignment")
}
